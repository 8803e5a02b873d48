"""One contract for every `AuditSink`: the in-memory one and the BigQuery one (on bqemulator).

The rows are what the engine really writes: two recorded example days replayed, which between them produce
every row kind but `slo` (input, decision, trigger, alert, dead_letter, phase_completion); the slo log is
checked with a date's outcome as views/slo.py writes it. The BigQuery side is read back
with `tabledata.list`; bqemulator (DuckDB, insertion order preserved) returns rows in insert order, so
"in order" checks the order the sink sent them in. Real BigQuery promises no such order.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from gcloud.aio.bigquery import Table

from adapters.bigquery_audit import BigQueryAuditSink
from adapters.bigquery_provision import provision_bigquery
from adapters.bigquery_schema import bigquery_rows
from adapters.memory import MemoryAuditSink
from adapters.ports import AuditRow, AuditSink
from ops.audit_rows import KINDS
from ops.replay import read_recording, replay
from tests.support.bigquery_emulator import api_root, bigquery_emulator
from tests.support.builders import default_policy
from tests.support.emulators import PROJECT, Emulator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def engine_rows() -> list[AuditRow]:
    rows: list[AuditRow] = []
    for name in ("critical_never_reports.jsonl", "duplicates_out_of_order_unknown.jsonl"):
        with (EXAMPLES / name).open() as lines:
            deliveries = read_recording(lines, name)
        rows += (await replay(deliveries, default_policy())).rows
    assert set(KINDS) - {"slo"} <= {row["kind"] for row in rows} <= set(KINDS)
    return rows


def table_row_count(rows: Sequence[AuditRow]) -> int:
    return sum(len(bigquery_rows(row)) for row in rows)


def by_kind(rows: Sequence[AuditRow]) -> dict[str, list[dict[str, Any]]]:
    return {kind: [dict(row) for row in rows if row["kind"] == kind] for kind in KINDS}


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll until `predicate` holds; fail with `what` after the deadline. Never a bare sleep."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if await result if isinstance(result, Awaitable) else result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.02)


async def stays(predicate: Callable[[], bool], duration_s: float, what: str) -> None:
    """Poll `predicate` for `duration_s`; fail the moment it stops holding (watching for an absence)."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        assert predicate(), what
        await asyncio.sleep(0.02)
    assert predicate(), what


# -- Reading BigQuery back (a test helper, not part of the sink) --------------------------------------------


async def read_table(
    session: aiohttp.ClientSession, root: str, dataset: str, name: str, project: str = PROJECT
) -> list[dict[str, Any]]:
    """Every row of a table as {column: value}, TIMESTAMP as aware datetimes, JSON parsed, in stored order."""
    table = Table(dataset, name, project=project, session=session, api_root=root)  # type: ignore[arg-type]
    fields = (await table.get())["schema"]["fields"]
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {"maxResults": 500}
    while True:
        page = await table.list_tabledata(params=params)
        rows += [_decode_record(fields, row["f"]) for row in page.get("rows") or []]
        if not page.get("pageToken"):
            return rows
        params["pageToken"] = page["pageToken"]


def _decode_record(fields: list[dict[str, Any]], cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {f["name"]: _decode(f, cell["v"]) for f, cell in zip(fields, cells, strict=True)}


def _decode(field: dict[str, Any], value: Any) -> Any:
    if field.get("mode") == "REPEATED":
        return [_decode({**field, "mode": "NULLABLE"}, item["v"]) for item in value or []]
    if value is None:
        return None
    match field["type"]:
        case "TIMESTAMP":  # bqemulator answers int64 microseconds; real BigQuery float seconds
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value))
        case "FLOAT":
            return float(value)
        case "INTEGER":
            return int(value)
        case "BOOLEAN":
            return value in (True, "true")
        case "JSON":
            return json.loads(value)
        case "RECORD":
            return _decode_record(field["fields"], value["f"])
        case _:
            return value


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- The backends ------------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    sink: AuditSink
    read_back: Callable[[], Awaitable[list[AuditRow]]]


@dataclass
class BigQuery:
    session: aiohttp.ClientSession
    root: str
    dataset: str

    async def events(self) -> list[AuditRow]:
        """The audit rows as stored: orchestration_events' payload is the whole row."""
        return [
            row["payload"]
            for row in await read_table(self.session, self.root, self.dataset, "orchestration_events")
        ]

    async def table(self, name: str) -> list[dict[str, Any]]:
        return await read_table(self.session, self.root, self.dataset, name)


async def new_bigquery(session: aiohttp.ClientSession, server: Emulator) -> BigQuery:
    dataset = f"audit_{uuid.uuid4().hex[:12]}"
    await provision_bigquery(PROJECT, dataset, session=session, api_root=api_root(server))
    return BigQuery(session, api_root(server), dataset)


@pytest.fixture(params=["memory", pytest.param("bigquery", marks=pytest.mark.emulator)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = MemoryAuditSink()

        async def memory_rows() -> list[AuditRow]:
            return list(memory.rows)

        yield Backend("memory", memory, memory_rows)
        return
    server: Emulator = request.getfixturevalue("bigquery_server")
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, server)
        sink = BigQueryAuditSink(
            PROJECT, bq.dataset, tmp_path / "audit.spool", batch_rows=40, session=session, api_root=bq.root
        )
        yield Backend("bigquery", sink, bq.events)
        assert sink.rejected_rows == 0
        assert sink.spool_pending == 0
        await sink.close()


# -- The contract ------------------------------------------------------------------------------------------


async def test_rows_written_then_flushed_are_all_readable_back_in_order_per_kind(backend: Backend) -> None:
    rows = await engine_rows()
    for start in range(0, len(rows), 7):  # the engine writes a few rows per delivery
        await backend.sink.write(rows[start : start + 7])
    await backend.sink.flush()

    stored = await backend.read_back()

    assert len(stored) == len(rows)
    assert by_kind(stored) == by_kind(rows)


async def test_write_returns_without_awaiting_the_backend(backend: Backend) -> None:
    rows = await engine_rows()
    write = backend.sink.write(rows)
    # A coroutine that never suspends finishes on its first step: no await on BigQuery (or anything) inside.
    with pytest.raises(StopIteration):
        write.send(None)
    await backend.sink.flush()
    assert len(await backend.read_back()) == len(rows)


# -- BigQuery only -----------------------------------------------------------------------------------------


@pytest.mark.emulator
async def test_bigquery_tables_hold_typed_checks_and_phase_completions(
    bigquery_server: Emulator, tmp_path: Path
) -> None:
    rows = await engine_rows()
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, bigquery_server)
        sink = BigQueryAuditSink(
            PROJECT, bq.dataset, tmp_path / "audit.spool", session=session, api_root=bq.root
        )
        await sink.write(rows)
        await sink.flush()

        checks = await bq.table("dependency_check_log")
        phases = await bq.table("phase_completion_log")
        events = await bq.table("orchestration_events")

    decisions = [r for r in rows if r["kind"] == "decision"]
    assert [c["at"] for c in checks] == [utc(d["at"]) for d in decisions]
    assert [c["coverage"] for c in checks] == [
        [{"processor": p, "coverage": v} for p, v in d["coverage"].items()] for d in decisions
    ]
    assert [(c["decision"], c["missing"], c["reasons"]) for c in checks] == [
        (d["decision"], d["missing"], d["reasons"]) for d in decisions
    ]
    ended = [r for r in rows if r["kind"] == "phase_completion"]
    assert [(p["outcome"], p["ended_at"], p["processors_reported"], p["missing"]) for p in phases] == [
        (e["outcome"], utc(e["ended_at"]), e["processors_reported"], e["missing"]) for e in ended
    ]
    assert {e["insert_id"] for e in events} == {bigquery_rows(r)[0][1]["insert_id"] for r in rows}
    assert sink.sent_rows == table_row_count(rows) and sink.rejected_rows == 0


@pytest.mark.emulator
async def test_bigquery_slo_log_holds_each_dates_outcome_with_counts_per_source_and_results(
    bigquery_server: Emulator, tmp_path: Path
) -> None:
    outcome = {
        "at": "2026-02-04T07:32:42Z",
        "kind": "slo",
        "game_date": "2026-02-03",
        "mode": "same_day",
        "outcome": "complete",
        "first_input_at": "2026-02-04T06:02:42Z",
        "ended_at": "2026-02-04T07:32:42Z",
        "end_to_end_s": 5400.0,
        "completeness": 0.8,
        "quality": None,
        "triggered": 4,
        "by_source": {"cascade": 3, "fallback": 0, "self_heal": 1, "manual": 0},
        "results": [
            {"slo": "end_to_end", "target": 7200.0, "actual": 5400.0, "met": True},
            {"slo": "quality", "target": 0.9, "actual": None, "met": False},
        ],
    }
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, bigquery_server)
        sink = BigQueryAuditSink(
            PROJECT, bq.dataset, tmp_path / "audit.spool", session=session, api_root=bq.root
        )
        await sink.write([outcome])
        await sink.flush()
        [stored] = await bq.table("slo_log")
        events = await bq.events()

    assert events == [outcome]
    assert (stored["game_date"], stored["mode"], stored["outcome"]) == ("2026-02-03", "same_day", "complete")
    assert (stored["first_input_at"], stored["ended_at"]) == (
        utc(outcome["first_input_at"]),
        utc(outcome["at"]),
    )
    assert (stored["end_to_end_s"], stored["completeness"], stored["quality"]) == (5400.0, 0.8, None)
    assert [stored[f"by_{s}"] for s in ("cascade", "fallback", "self_heal", "manual")] == [3, 0, 1, 0]
    assert stored["triggered"] == 4
    assert stored["results"] == outcome["results"]
    assert sink.rejected_rows == 0


@pytest.mark.emulator
async def test_rows_bigquery_refuses_are_kept_in_the_rejected_file_and_the_rest_is_stored(
    bigquery_server: Emulator, tmp_path: Path
) -> None:
    rows = await engine_rows()
    decision = next(r for r in rows if r["kind"] == "decision")
    phase = next(r for r in rows if r["kind"] == "phase_completion")
    refused_in_a_column = {**decision, "completeness": "high"}  # insertErrors from dependency_check_log
    answered_with_500 = {**phase, "processors_reported": 10**30}  # bqemulator: HTTP 500 for the whole request
    unstorable = {"kind": "alert", "message": "no timestamp"}  # refused before sending
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, bigquery_server)
        spool = tmp_path / "audit.spool"
        sink = BigQueryAuditSink(PROJECT, bq.dataset, spool, session=session, api_root=bq.root)
        await sink.write([*rows[:20], refused_in_a_column, answered_with_500, unstorable, *rows[20:]])
        await sink.flush()
        events = await bq.events()
        phases = await bq.table("phase_completion_log")

    rejected = [json.loads(line) for line in sink.rejected_path.read_text().splitlines()]
    assert sink.rejected_rows == len(rejected) == 3
    assert {r["table"] for r in rejected} == {"dependency_check_log", "phase_completion_log", "-"}
    assert all(r["error"] for r in rejected)
    # Everything else went in, including both refused rows' orchestration_events copies.
    assert by_kind(events) == by_kind([*rows[:20], refused_in_a_column, answered_with_500, *rows[20:]])
    assert len(phases) == sum(r["kind"] == "phase_completion" for r in rows)
    assert sink.spool_pending == 0


async def test_write_never_waits_for_a_bigquery_that_hangs_and_flush_spools_everything(
    tmp_path: Path,
) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # reads nothing, answers nothing: the client times out

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rows = await engine_rows()
    spool = tmp_path / "audit.spool"
    sink = BigQueryAuditSink(
        PROJECT, "audit", spool, api_root=f"http://127.0.0.1:{port}/bigquery/v2", request_timeout_s=1
    )
    try:
        with pytest.raises(StopIteration):
            sink.write(rows).send(None)
        assert sink.buffered == table_row_count(rows)

        await sink.flush()  # one timed-out request, then everything goes to the spool
    finally:
        await sink.close()
        server.close()
        for writer in connections:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()

    assert sink.buffered == 0 and sink.sent_rows == 0
    assert sink.spooled_rows == sink.spool_pending == table_row_count(rows)
    spooled = [json.loads(line) for line in spool.read_text().splitlines()]
    assert [e["row"]["payload"] for e in spooled if e["table"] == "orchestration_events"] == [
        json.dumps(dict(r), sort_keys=True, separators=(",", ":"), ensure_ascii=False) for r in rows
    ]


@pytest.mark.emulator
async def test_audit_rows_survive_a_bigquery_emulator_restart(tmp_path: Path) -> None:
    """Rows written while BigQuery is down are spooled, and land in order once it is back; none are lost."""
    rows = await engine_rows()
    before, during = rows[: len(rows) // 2], rows[len(rows) // 2 :]
    emulator = bigquery_emulator(data_dir=tmp_path / "bigquery")
    await asyncio.to_thread(emulator.start)
    spool = tmp_path / "audit.spool"
    try:
        async with aiohttp.ClientSession() as session:
            bq = await new_bigquery(session, emulator)
            sink = BigQueryAuditSink(
                PROJECT,
                bq.dataset,
                spool,
                batch_rows=25,
                flush_interval_s=0.05,
                max_backoff_s=0.2,
                session=session,
                api_root=bq.root,
                request_timeout_s=2,
            )
            flusher = asyncio.create_task(sink.run())
            try:
                await sink.write(before)
                await eventually(lambda: sink.sent_rows == table_row_count(before), 10, "first half sent")

                await asyncio.to_thread(emulator.stop)
                await sink.write(during)
                await eventually(lambda: sink.spooled_rows > 0, 10, "rows spooled while BigQuery is down")
                assert sink.spool_pending + sink.buffered == table_row_count(during)  # nothing lost
                assert len(spool.read_text().splitlines()) == sink.spool_pending

                await asyncio.to_thread(emulator.start)  # same ports, same data directory
                await eventually(lambda: sink.buffered == sink.spool_pending == 0, 20, "spool resent")
            finally:
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
            await sink.flush()

            stored = await bq.events()
            checks = await bq.table("dependency_check_log")
            await sink.close()
    finally:
        await asyncio.to_thread(emulator.stop)

    assert by_kind(stored) == by_kind(rows)  # the first half survived the restart; the second arrived
    assert len(checks) == sum(r["kind"] == "decision" for r in rows)
    assert spool.read_bytes() == b""
    assert sink.rejected_rows == 0


@pytest.mark.emulator
async def test_a_spool_left_by_a_crashed_process_is_resent_first_and_a_torn_line_is_kept(
    bigquery_server: Emulator, tmp_path: Path
) -> None:
    rows = await engine_rows()
    left_behind, new = rows[:30], rows[30:]
    spool = tmp_path / "audit.spool"
    lines = [
        json.dumps({"table": table, "row": row})
        for audit_row in left_behind
        for table, row in bigquery_rows(audit_row)
    ]
    spool.write_text(
        "\n".join(lines) + '\n{"table": "orchestration_ev'
    )  # the crash cut the last append short
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, bigquery_server)
        sink = BigQueryAuditSink(PROJECT, bq.dataset, spool, batch_rows=40, session=session, api_root=bq.root)
        assert sink.spool_pending == len(lines) + 1
        await sink.write(new)
        await sink.flush()
        stored = await bq.events()

    assert by_kind(stored) == by_kind(rows)  # the spooled rows first, then the new ones
    assert spool.read_bytes() == b""
    [torn] = [json.loads(line) for line in sink.rejected_path.read_text().splitlines()]
    assert torn["row"] == {"spool_line": '{"table": "orchestration_ev\n'}


@pytest.mark.emulator
async def test_a_full_buffer_spills_its_oldest_rows_to_the_spool_and_order_is_kept(
    bigquery_server: Emulator, tmp_path: Path
) -> None:
    rows = await engine_rows()
    spool = tmp_path / "audit.spool"
    async with aiohttp.ClientSession() as session:
        bq = await new_bigquery(session, bigquery_server)
        sink = BigQueryAuditSink(
            PROJECT, bq.dataset, spool, batch_rows=10, max_buffer_rows=30, session=session, api_root=bq.root
        )
        for start in range(0, len(rows), 5):  # no flusher running: the buffer only grows
            await sink.write(rows[start : start + 5])
            assert sink.buffered <= 30  # bounded: the oldest rows went to the spool
        assert sink.spooled_rows == sink.spool_pending > 0
        assert sink.spool_pending + sink.buffered == table_row_count(rows)  # nothing dropped
        first_spooled = json.loads(spool.read_text().splitlines()[0])
        assert first_spooled["row"]["payload"] == json.dumps(
            dict(rows[0]), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )

        await sink.flush()
        stored = await bq.events()

    assert by_kind(stored) == by_kind(rows)
    assert sink.spool_pending == sink.buffered == 0


# -- When the flusher sends: against a scripted BigQuery that records every insertAll -----------------------


@dataclass
class Inserts:
    """What a scripted BigQuery received: per insertAll request, the table, its row count and when."""

    requests: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def sizes(self) -> list[int]:
        return [rows for _, rows, _ in self.requests]

    async def insert_all(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((request.match_info["table"], len(body["rows"]), time.monotonic()))
        return web.json_response({"kind": "bigquery#tableDataInsertAllResponse"})


@asynccontextmanager
async def scripted_bigquery() -> AsyncIterator[tuple[str, Inserts]]:
    """A stand-in BigQuery that accepts every insertAll. Yields (api_root, what it received)."""
    inserts = Inserts()
    app = web.Application()
    app.router.add_post("/bigquery/v2/projects/{p}/datasets/{d}/tables/{table}/insertAll", inserts.insert_all)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/bigquery/v2", inserts
    finally:
        await runner.cleanup()


class FakeClock:
    """The sink's monotonic clock, moved only by the test."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@asynccontextmanager
async def flushing(sink: BigQueryAuditSink) -> AsyncIterator[None]:
    flusher = asyncio.create_task(sink.run())
    try:
        yield
    finally:
        flusher.cancel()
        await asyncio.gather(flusher, return_exceptions=True)
        await sink.close()


async def decisions(count: int) -> list[AuditRow]:
    """`count` decision rows: two table rows each (orchestration_events and dependency_check_log)."""
    rows = [row for row in await engine_rows() if row["kind"] == "decision"][:count]
    assert len(rows) == count
    return rows


async def test_full_batches_go_out_as_they_fill_and_the_partial_rest_only_when_its_interval_passed(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    async with scripted_bigquery() as (root, inserts):
        sink = BigQueryAuditSink(
            PROJECT,
            "audit",
            tmp_path / "spool",
            batch_rows=10,
            flush_interval_s=0.1,
            api_root=root,
            now_s=clock,
        )
        async with flushing(sink):
            await sink.write(await decisions(12))  # 24 table rows: two full batches and 4 rows
            await eventually(lambda: len(inserts.requests) == 4, 5, "the two full batches")
            # A batch spans tables: each full one is 5 events + 5 checks, one insertAll per table.
            assert inserts.sizes == [5, 5, 5, 5]
            # The clock decides, not the wall: many real intervals later the rest still waits.
            await stays(lambda: sink.buffered == 4, 0.5, "the partial batch waits for its interval")

            clock.now_s += 0.1
            await eventually(lambda: sink.buffered == 0, 5, "the partial batch sent")
    assert inserts.sizes == [5, 5, 5, 5, 2, 2]
    assert sink.sent_rows == 24 and sink.spool_pending == 0


async def test_under_steady_writes_every_insert_carries_a_full_batch(tmp_path: Path) -> None:
    clock = FakeClock()
    rows = await decisions(20)
    async with scripted_bigquery() as (root, inserts):
        sink = BigQueryAuditSink(
            PROJECT,
            "audit",
            tmp_path / "spool",
            batch_rows=10,
            flush_interval_s=1.0,
            api_root=root,
            now_s=clock,
        )
        async with flushing(sink):
            for row in rows:  # one decision every 0.1 s: a batch fills every 0.5 s, within its 1 s interval
                clock.now_s += 0.1
                await sink.write([row])
                await asyncio.sleep(0)  # let the flusher see each write, as a busy router would
            await eventually(lambda: sink.sent_rows == 40, 5, "four full batches")
    assert inserts.sizes == [5] * 8  # never a tail batch: each batch is 5 events + 5 checks


async def test_a_quiet_router_sends_a_lone_row_once_the_interval_has_passed(tmp_path: Path) -> None:
    [row] = await decisions(1)
    async with scripted_bigquery() as (root, inserts):
        sink = BigQueryAuditSink(PROJECT, "audit", tmp_path / "spool", flush_interval_s=0.3, api_root=root)
        async with flushing(sink):
            written_at = time.monotonic()
            await sink.write([row])
            await eventually(lambda: sink.sent_rows == 2, 5, "the lone row sent")
    assert [(table, size) for table, size, _ in inserts.requests] == [
        ("orchestration_events", 1),
        ("dependency_check_log", 1),
    ]
    assert inserts.requests[0][2] - written_at >= 0.3


async def test_flush_sends_a_partial_batch_without_waiting_for_its_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    async with scripted_bigquery() as (root, inserts):
        sink = BigQueryAuditSink(
            PROJECT,
            "audit",
            tmp_path / "spool",
            batch_rows=10,
            flush_interval_s=60,
            api_root=root,
            now_s=clock,
        )
        async with flushing(sink):
            await sink.write(await decisions(2))
            await sink.flush()  # shutdown: everything, now
            assert inserts.sizes == [2, 2] and sink.buffered == 0
