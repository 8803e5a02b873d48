"""The audit sink's shutdown flush against a BigQuery that accepts connections and never answers: it ends
within its budget (or when cancelled) and every row it could not confirm is in the spool file."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio

from adapters.bigquery_audit import BigQueryAuditSink
from adapters.ports import AuditRow
from ops.audit_rows import dead_letter_row


@asynccontextmanager
async def silent_bigquery() -> AsyncIterator[str]:
    """An api_root whose server accepts every connection and never sends a byte back."""
    held: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/bigquery/v2"
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


def audit_rows(count: int) -> list[AuditRow]:
    at = datetime(2025, 12, 31, 6, 0, tzinfo=UTC)
    return [
        dead_letter_row(at, "nba-phase2-raw-complete", f"m-{n}", "not_json", "not JSON") for n in range(count)
    ]


def spooled(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def buffered_sink(api_root: str, spool: Path, rows: int) -> BigQueryAuditSink:
    # The production request timeout (10 s) is longer than the flush budgets below, as in the issue.
    sink = BigQueryAuditSink("p", "audit", spool, api_root=api_root, request_timeout_s=10)
    await sink.write(audit_rows(rows))
    assert sink.buffered == rows
    return sink


async def test_a_flush_out_of_budget_spools_every_unconfirmed_row(tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    async with silent_bigquery() as api_root:
        sink = await buffered_sink(api_root, spool, 3)
        began = time.monotonic()
        try:
            await sink.flush(budget_s=1.5)
        finally:
            await sink.close()
    assert time.monotonic() - began < 2.5  # the budget, not the 10 s request timeout, bounds it
    assert sink.buffered == 0 and sink.sent_rows == 0
    assert sink.spool_pending == 3 and len(spooled(spool)) == 3


async def test_a_flush_cancelled_by_its_caller_spools_every_unconfirmed_row(tmp_path: Path) -> None:
    spool = tmp_path / "audit.spool"
    async with silent_bigquery() as api_root:
        sink = await buffered_sink(api_root, spool, 3)
        try:
            with anyio.move_on_after(0.5) as scope:
                await sink.flush()
        finally:
            await sink.close()
    assert scope.cancelled_caught
    assert sink.buffered == 0 and sink.spool_pending == 3 and len(spooled(spool)) == 3
