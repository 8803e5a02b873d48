"""`cascade run` killed with SIGKILL (issue 9, section 6: "no audit row lost" under kill -9): the audit rows
it had buffered, and not sent, are delivered to BigQuery by the next daemon started on the same spool path.

BigQuery is frozen (SIGSTOP: it accepts connections and never answers) while the first daemon routes, so
no row can reach it before the kill; the rows' only copy on disk is then the sink's write-ahead log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from adapters.bigquery_schema import bigquery_rows
from tests.contract.test_audit_sink import read_table
from tests.integration.test_daemon import Stack, metric, overnight_messages, start, stop
from tests.integration.test_daemon import stack as stack  # the fixture: the three emulators, provisioned
from tests.integration.test_shutdown import audit_into, publish_all
from tests.integration.test_shutdown import own_bigquery as own_bigquery  # the fixture: a BigQuery to freeze
from tests.support.emulators import Emulator, wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(180)]


def rows_on_disk(spool: Path) -> list[dict[str, Any]]:
    """The audit rows a dead daemon left on disk: its spool (table rows) and its WAL (audit rows)."""
    rows: list[dict[str, Any]] = []
    for path in sorted(spool.parent.glob(spool.name + "*")):
        if path == spool:
            entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            rows += [json.loads(e["row"]["payload"]) for e in entries if e["table"] == "orchestration_events"]
        elif path.name.startswith(spool.name + ".wal."):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


async def stored_insert_ids(bigquery: Emulator, project: str) -> set[str]:
    async with aiohttp.ClientSession() as session:
        root = f"http://{bigquery.host_port}/bigquery/v2"
        stored = await read_table(session, root, "cascade_audit", "orchestration_events", project=project)
    return {row["insert_id"] for row in stored}


def insert_id(audit_row: dict[str, Any]) -> str:
    return str(bigquery_rows(audit_row)[0][1]["insert_id"])


def routed(stack: Stack, topics: set[str]) -> float:
    text = stack.get("/metrics")[1]
    return sum(metric(text, "cascade_events_received_total", topic=t, status="routed") for t in topics)


def test_audit_rows_buffered_by_a_daemon_killed_with_sigkill_reach_bigquery_after_a_restart(
    stack: Stack, own_bigquery: Emulator
) -> None:
    spool = audit_into(stack, own_bigquery)
    messages = overnight_messages()[:7]  # phase 2 complete (five processors: one trigger), two of phase 3
    process = start(stack)
    try:
        own_bigquery.freeze()  # no audit row can be sent from now on
        message_ids = anyio.run(publish_all, stack, messages)
        assert wait_until(lambda: routed(stack, {t for t, _ in messages}) == len(messages), 30)
        process.kill()  # SIGKILL: no shutdown path, no flush
    finally:
        process.kill()
        output = process.communicate(timeout=10)[0]
        own_bigquery.thaw()
    assert "cascade stopped" not in output  # killed, not stopped
    left = rows_on_disk(spool)
    assert {row["message_id"] for row in left if row["kind"] == "input"} == set(message_ids)
    assert any(row["kind"] == "trigger" for row in left)

    restarted = start(stack)  # same spool path: its sink takes the WAL over and resends it
    try:
        wanted = {insert_id(row) for row in left}

        def all_stored() -> bool:
            return wanted <= anyio.run(stored_insert_ids, own_bigquery, stack.project)

        assert wait_until(all_stored, 60), "audit rows of the killed daemon missing from BigQuery"
        returncode, output = stop(restarted)
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.communicate(timeout=10)
    assert returncode == 0, output[-3000:]
    assert "moved the WAL of a previous process" in output
    assert not list(spool.parent.glob(spool.name + ".wal.*"))  # the orderly stop leaves no WAL behind
