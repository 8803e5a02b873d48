"""The BigQuery audit sink's write-ahead log: buffered rows survive a process that dies without a flush.

A restart after `kill -9` is simulated by abandoning a sink (no flush, no close) and starting a new one on
the same spool path; `tests/integration/test_audit_kill.py` does it with a real SIGKILL. Duplicates are
allowed where a recovered row may already have been sent or spooled (readers keep one row per `insert_id`);
order is then checked without them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.bigquery_audit import BigQueryAuditSink
from adapters.bigquery_schema import bigquery_rows
from adapters.ports import AuditRow
from tests.contract.test_audit_sink import (
    FakeClock,
    by_kind,
    decisions,
    engine_rows,
    eventually,
    flushing,
    new_bigquery,
    scripted_bigquery,
    table_row_count,
)
from tests.support.emulators import PROJECT, Emulator

# Nothing listens there: every insert fails at once (connection refused), like an outage.
UNREACHABLE = "http://127.0.0.1:9/bigquery/v2"


def wal_segments(spool: Path) -> list[Path]:
    prefix = spool.name + ".wal."
    found = [p for p in spool.parent.iterdir() if p.name.startswith(prefix)]
    return sorted(found, key=lambda p: int(p.name[len(prefix) :]))


def wal_audit_rows(spool: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for s in wal_segments(spool) for line in s.read_text().splitlines()]


TableRow = tuple[str, str]  # (table, insert_id): an audit row's table rows share its insert_id


def table_rows(rows: list[AuditRow]) -> list[TableRow]:
    return [(table, str(row["insert_id"])) for audit in rows for table, row in bigquery_rows(audit)]


def wal_table_rows(spool: Path) -> list[TableRow]:
    """The table rows the WAL holds, in WAL order."""
    return table_rows(wal_audit_rows(spool))


def spooled_table_rows(spool: Path) -> list[TableRow]:
    entries = [json.loads(line) for line in spool.read_text().splitlines()]
    return [(entry["table"], entry["row"]["insert_id"]) for entry in entries]


async def write_in_chunks(sink: BigQueryAuditSink, rows: list[AuditRow], size: int = 3) -> None:
    for start in range(0, len(rows), size):  # the engine writes a few rows per delivery
        await sink.write(rows[start : start + size])


async def test_rows_written_and_not_yet_sent_are_in_the_wal(tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    rows = await engine_rows()
    sink = BigQueryAuditSink(PROJECT, "audit", spool, api_root=UNREACHABLE)

    await write_in_chunks(sink, rows)

    assert sink.buffered == table_row_count(rows)
    assert wal_audit_rows(spool) == [dict(row) for row in rows]  # every row, in write order


@pytest.mark.emulator
async def test_rows_of_a_sink_abandoned_without_flush_are_sent_by_the_next_sink_on_its_spool(
    bigquery_server: Emulator, tmp_path: Path
) -> None:
    spool = tmp_path / "audit.spool"
    rows = await engine_rows()
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, bigquery_server)
        killed = BigQueryAuditSink(
            PROJECT, bq.dataset, spool, flush_interval_s=3600, session=session, api_root=bq.root
        )
        await write_in_chunks(killed, rows)
        del killed  # as after kill -9: no flush, no close; its buffer is gone with it

        restarted = BigQueryAuditSink(PROJECT, bq.dataset, spool, session=session, api_root=bq.root)
        assert restarted.spool_pending == table_row_count(rows)
        assert wal_segments(spool) == []  # moved into the spool
        await restarted.flush()
        stored = await bq.events()

    assert by_kind(stored) == by_kind(rows)  # every row, once (none was sent before), in write order
    assert restarted.rejected_rows == 0 and spool.read_bytes() == b""


async def test_recovered_wal_rows_follow_the_spool_in_write_order(tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    rows = await engine_rows()
    killed = BigQueryAuditSink(
        PROJECT, "audit", spool, batch_rows=10, max_buffer_rows=30, api_root=UNREACHABLE
    )
    await write_in_chunks(
        killed, rows
    )  # no flusher: the oldest rows spill to the spool, the rest stay buffered
    assert killed.spool_pending > 0 and killed.buffered > 0

    BigQueryAuditSink(PROJECT, "audit", spool, api_root=UNREACHABLE)

    recovered = spooled_table_rows(spool)
    # A segment can hold rows already spooled (duplicates); without them, exactly the write order.
    assert list(dict.fromkeys(recovered)) == table_rows(rows)
    assert wal_segments(spool) == []


async def test_a_torn_last_wal_line_is_rejected_and_every_whole_row_is_sent(tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    rows = await decisions(6)  # two table rows each
    killed = BigQueryAuditSink(PROJECT, "audit", spool, api_root=UNREACHABLE)
    await killed.write(rows)
    [segment] = wal_segments(spool)
    whole = segment.read_bytes()
    segment.write_bytes(whole[: whole.rindex(b"\n", 0, -1) + 40])  # killed in the middle of the last row

    async with scripted_bigquery() as (root, inserts):
        restarted = BigQueryAuditSink(PROJECT, "audit", spool, api_root=root)
        assert restarted.spool_pending == 5 * 2 + 1
        await restarted.flush()
        await restarted.close()

    assert restarted.sent_rows == sum(inserts.sizes) == 5 * 2
    [torn] = [json.loads(line) for line in restarted.rejected_path.read_text().splitlines()]
    assert torn["error"].startswith("unreadable spool line")
    assert spool.read_bytes() == b"" and wal_segments(spool) == []


async def test_the_wal_holds_only_unsent_rows_and_at_most_one_batch_more_under_steady_writes(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    spool = tmp_path / "audit.spool"
    one_table_row = next(row for row in await engine_rows() if row["kind"] == "input")
    # 1 + 2k table rows: never a multiple of the batch, so the buffer never empties (steady load).
    rows = [one_table_row, *await decisions(60)]
    async with scripted_bigquery() as (root, _inserts):
        sink = BigQueryAuditSink(
            PROJECT, "audit", spool, batch_rows=10, flush_interval_s=1.0, api_root=root, now_s=clock
        )
        async with flushing(sink):
            for written in range(1, len(rows) + 1):  # a decision every 0.1 s: a batch fills every 0.5 s
                clock.now_s += 0.1
                await sink.write([rows[written - 1]])
                await eventually(lambda: sink.buffered < 10, 5, "full batches sent")
                assert sink.buffered > 0
                unsent = table_rows(rows[:written])[-sink.buffered :]
                in_wal = wal_table_rows(spool)
                assert in_wal[-len(unsent) :] == unsent  # every unsent row is in the WAL, in order
                assert len(in_wal) <= len(unsent) + 10  # plus at most one batch of sent rows
                assert len(wal_segments(spool)) <= 2
            clock.now_s += 1.0
            await eventually(lambda: sink.buffered == 0, 5, "the partial batch sent")
            assert wal_table_rows(spool) == []  # all sent: the WAL holds nothing
    assert sink.sent_rows == 121


async def test_in_an_outage_spilled_rows_leave_the_wal(tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    rows = await engine_rows()
    sink = BigQueryAuditSink(PROJECT, "audit", spool, batch_rows=10, max_buffer_rows=30, api_root=UNREACHABLE)
    for start in range(0, len(rows), 3):  # no flusher: the buffer spills its oldest rows to the spool
        await sink.write(rows[start : start + 3])
        assert len(wal_table_rows(spool)) <= sink.buffered + 30  # bounded by the buffer, not the outage
    assert sink.spool_pending + sink.buffered == table_row_count(rows)


@pytest.mark.parametrize("reachable", [True, False], ids=["bigquery up", "bigquery down"])
async def test_an_orderly_flush_leaves_no_wal_behind(tmp_path: Path, reachable: bool) -> None:
    spool = tmp_path / "audit.spool"
    rows = await engine_rows()
    async with scripted_bigquery() as (root, _inserts):
        sink = BigQueryAuditSink(
            PROJECT, "audit", spool, batch_rows=40, api_root=root if reachable else UNREACHABLE
        )
        await write_in_chunks(sink, rows)
        assert wal_segments(spool)
        await sink.flush()
        await sink.close()

    assert wal_segments(spool) == []
    assert sink.spool_pending == (0 if reachable else table_row_count(rows))
