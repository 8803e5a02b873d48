"""`BigQueryHistory` reads back what `BigQueryAuditSink` wrote: a date's whole audit history, as written.

Against bqemulator, rows go in through the real sink (write + flush) and come back through the real query
path (jobs.query with named parameters, getQueryResults pages). Against a scripted BigQuery: the answers the
emulator never gives (a query still running, outages, rate limits, refusals) and how they are translated.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from gcloud.aio.bigquery import Dataset, Job

from adapters.bigquery_audit import BigQueryAuditSink
from adapters.bigquery_history import BigQueryHistory
from adapters.bigquery_provision import provision_bigquery
from adapters.bigquery_schema import canonical_json, insert_id
from adapters.errors import ConfigurationError, TransientError
from tests.support.bigquery_emulator import api_root
from tests.support.emulators import PROJECT, Emulator

DAY = date(2026, 2, 3)
Row = dict[str, Any]


# -- Audit rows as the engine writes them (ops/audit_rows.py, views/slo.py) ---------------------------------


def input_row(at: str, game_date: str, processor: str | None, message_id: str, count: int | None) -> Row:
    return {
        "at": at,
        "kind": "input",
        "game_date": game_date,
        "transition": "phase2_to_phase3",
        "processor": processor,
        "raw_name": "OddsApiGameLinesBatchProcessor" if processor else "NbacInjuryReportProcessor",
        "status": "success",
        "message_id": message_id,
        "reported_at": "2026-02-04T06:02:40Z",
        "record_count": count,
        "mode_hint": None,
    }


def decision_row(at: str, game_date: str, decision: str) -> Row:
    return {
        "at": at,
        "kind": "decision",
        "game_date": game_date,
        "transition": "phase2_to_phase3",
        "mode": "overnight",
        "decision": decision,
        "completeness": 0.833333,
        "quality_score": 0.95,
        "missing": ["nbac_gamebook"] if decision == "WAIT" else [],
        "reasons": ["critical processor(s) missing: nbac_gamebook"] if decision == "WAIT" else [],
        "cause": "event",
        "stale": [],
        "coverage": {"odds_game_lines": 1.0, "nbac_gamebook": 0.0, "bdl_boxscores": 0.5},
    }


def trigger_row(at: str, game_date: str) -> Row:
    return {
        "at": at,
        "kind": "trigger",
        "game_date": game_date,
        "transition": "phase2_to_phase3",
        "mode": "overnight",
        "topic": "nba-phase3-trigger",
        "trigger_id": f"phase2_to_phase3:{game_date}",
        "source": "cascade",
        "degraded": False,
        "payload": {"game_date": game_date, "tables": ["a", "b"], "completeness": 1.0, "attempt": 1},
    }


def alert_row(at: str, game_date: str | None) -> Row:
    return {
        "at": at,
        "kind": "alert",
        "alert": "fallback_deadline_missed",
        "severity": "CRITICAL",
        "game_date": game_date,
        "transition": "phase2_to_phase3" if game_date else None,
        "message": 'fallback deadline passed — "nbac_gamebook" missing',
        "mode": "overnight" if game_date else None,
        "missing": ["nbac_gamebook"] if game_date else [],
        "next_action": "self-heal" if game_date else None,
        "next_at": "2026-02-04T12:00:00Z" if game_date else None,
    }


def phase_row(ended_at: str, game_date: str, transition: str = "phase2_to_phase3") -> Row:
    return {
        "at": ended_at,
        "kind": "phase_completion",
        "game_date": game_date,
        "transition": transition,
        "mode": "overnight",
        "outcome": "triggered_degraded",
        "source": "self_heal",
        "trigger_id": f"{transition}:{game_date}",
        "opened_at": "2026-02-04T06:02:42Z",
        "ended_at": ended_at,
        "completeness": 0.8,
        "processors_reported": 4,
        "missing": ["nbac_gamebook"],
    }


def slo_row(at: str, game_date: str) -> Row:
    return {
        "at": at,
        "kind": "slo",
        "game_date": game_date,
        "mode": "same_day",
        "outcome": "complete",
        "first_input_at": "2026-02-04T06:02:42Z",
        "ended_at": at,
        "end_to_end_s": 5400.25,
        "completeness": 0.8,
        "quality": None,
        "triggered": 4,
        "by_source": {"cascade": 3, "fallback": 0, "self_heal": 1, "manual": 0},
        "results": [
            {"slo": "end_to_end", "target": 7200.0, "actual": 5400.25, "met": True},
            {"slo": "completeness", "target": 0.8, "actual": 0.8, "met": True},
            {"slo": "quality", "target": 0.9, "actual": None, "met": False},
        ],
    }


def dead_letter_row(at: str) -> Row:
    return {
        "at": at,
        "kind": "dead_letter",
        "topic": "nba-phase2-raw-complete",
        "message_id": "m-dead",
        "reason": "not JSON",
    }


def history_of_the_day() -> list[Row]:
    """Everything of 2026-02-03, written between the evening before and three days after."""
    return [
        input_row("2026-02-01T00:00:00Z", "2026-02-03", "odds_game_lines", "m-early", 12),  # first day read
        input_row("2026-02-04T06:02:42Z", "2026-02-03", "odds_game_lines", "m1", 64),
        decision_row("2026-02-04T06:02:42Z", "2026-02-03", "WAIT"),  # same instant as its input
        input_row("2026-02-04T06:02:42.5Z", "2026-02-03", None, "m2", None),  # after 42Z, before 42.5 sorts
        alert_row("2026-02-04T10:00:00Z", "2026-02-03"),
        decision_row("2026-02-04T12:00:00Z", "2026-02-03", "TRIGGER"),
        trigger_row("2026-02-04T12:00:00Z", "2026-02-03"),
        phase_row("2026-02-04T12:00:00Z", "2026-02-03"),
        slo_row("2026-02-04T13:30:00Z", "2026-02-03"),
        input_row("2026-02-06T23:59:59.999999Z", "2026-02-03", "odds_game_lines", "m-late", 1),  # last day
    ]


def neighbours() -> list[Row]:
    """Rows the day's history must not include: other dates written in the same days, undated rows."""
    return [
        input_row("2026-02-03T06:00:00Z", "2026-02-02", "odds_game_lines", "m-prev", 50),
        phase_row("2026-02-03T09:00:00Z", "2026-02-02"),
        slo_row("2026-02-03T09:30:00Z", "2026-02-02"),
        input_row("2026-02-05T06:00:00Z", "2026-02-04", "odds_game_lines", "m-next", 70),
        decision_row("2026-02-05T06:00:00Z", "2026-02-04", "WAIT"),
        dead_letter_row("2026-02-04T06:05:00Z"),
        alert_row("2026-02-04T06:06:00Z", None),  # e.g. breaker opened, no date
    ]


def in_read_order(rows: Sequence[Row]) -> list[Row]:
    """The order the reader promises: by instant (not by the text of `at`), then by insert_id."""
    return sorted(rows, key=lambda r: (datetime.fromisoformat(r["at"].replace("Z", "+00:00")), insert_id(r)))


# -- The emulator side ---------------------------------------------------------------------------------------


@dataclass
class Audit:
    session: aiohttp.ClientSession
    root: str
    dataset: str
    spool: Path

    async def write(self, *batches: Sequence[Row]) -> None:
        """Through the real sink: each batch one write(), then flush() (what shutdown does)."""
        sink = BigQueryAuditSink(PROJECT, self.dataset, self.spool, session=self.session, api_root=self.root)
        for batch in batches:
            await sink.write(batch)
        await sink.flush()
        assert sink.rejected_rows == 0 and sink.spool_pending == 0

    def history(self, dataset: str | None = None, page_rows: int = 3) -> BigQueryHistory:
        return BigQueryHistory(
            PROJECT, dataset or self.dataset, session=self.session, api_root=self.root, page_rows=page_rows
        )

    async def stored(self, insert_id_: str) -> int:
        """How many copies of a row the table holds (the sink does not dedupe, nor does bqemulator)."""
        job = Job(project=PROJECT, session=self.session, api_root=self.root)  # type: ignore[arg-type]
        sql = f"SELECT COUNT(*) FROM `{PROJECT}.{self.dataset}.orchestration_events` WHERE insert_id = @id"
        params = [
            {"name": "id", "parameterType": {"type": "STRING"}, "parameterValue": {"value": insert_id_}}
        ]
        response = await job.query({"query": sql, "useLegacySql": False, "queryParameters": params})
        return int(response["rows"][0]["f"][0]["v"])


@pytest.fixture
async def audit(bigquery_server: Emulator, tmp_path: Path) -> AsyncIterator[Audit]:
    async with aiohttp.ClientSession() as session:
        dataset = f"history_{uuid.uuid4().hex[:12]}"
        await provision_bigquery(PROJECT, dataset, session=session, api_root=api_root(bigquery_server))
        yield Audit(session, api_root(bigquery_server), dataset, tmp_path / "audit.spool")


@pytest.mark.emulator
async def test_a_dates_history_is_every_row_of_that_date_once_each_exactly_as_written(audit: Audit) -> None:
    day = history_of_the_day()
    resent = day[1]  # an input the sink sent again after a crash: stored twice
    await audit.write(neighbours()[:3], day[:5], [resent], day[5:], neighbours()[3:])
    assert await audit.stored(insert_id(resent)) == 2

    got = await audit.history().rows(DAY, DAY)

    assert got == in_read_order(day)
    # Equal as JSON too: floats stay floats (1.0 is not read back as 1), nested lists and objects intact.
    assert [canonical_json(r) for r in got] == [canonical_json(r) for r in in_read_order(day)]
    assert {r["kind"] for r in got} == {"input", "decision", "trigger", "alert", "phase_completion", "slo"}


@pytest.mark.emulator
async def test_a_range_of_dates_reads_each_of_them_and_nothing_undated(audit: Audit) -> None:
    await audit.write(history_of_the_day(), neighbours())

    got = await audit.history(page_rows=1000).rows(date(2026, 2, 2), date(2026, 2, 4))

    dated = [r for r in [*history_of_the_day(), *neighbours()] if r.get("game_date")]
    assert got == in_read_order(dated)


@pytest.mark.emulator
async def test_the_same_read_twice_gives_the_same_list(audit: Audit) -> None:
    await audit.write(history_of_the_day(), neighbours())
    history = audit.history(page_rows=2)

    assert await history.rows(DAY, DAY) == await history.rows(DAY, DAY)


@pytest.mark.emulator
async def test_a_date_without_rows_reads_as_empty(audit: Audit) -> None:
    await audit.write(history_of_the_day())

    assert await audit.history().rows(date(2025, 6, 1), date(2025, 6, 1)) == []
    assert await audit.history().rows(DAY, date(2026, 2, 2)) == []  # last before first


@pytest.mark.emulator
async def test_phase_durations_are_the_phase_completions_of_dates_since_a_day_once_each(audit: Audit) -> None:
    old = phase_row("2026-01-20T09:00:00Z", "2026-01-19")
    recent = [
        phase_row("2026-02-03T09:00:00Z", "2026-02-02"),
        phase_row("2026-02-04T12:00:00Z", "2026-02-03"),
        phase_row("2026-02-04T12:30:00Z", "2026-02-03", "phase3_to_phase4"),
    ]
    await audit.write([old, *recent], history_of_the_day(), [recent[0]])  # recent[0] resent

    got = await audit.history().phase_durations(date(2026, 2, 2))

    assert got == in_read_order(recent)


@pytest.mark.emulator
async def test_a_missing_dataset_is_a_configuration_error_that_says_to_run_cascade_provision(
    audit: Audit,
) -> None:
    with pytest.raises(ConfigurationError, match="cascade provision") as missing:
        await audit.history(dataset="never_provisioned").rows(DAY, DAY)
    assert "never_provisioned" in str(missing.value)

    with pytest.raises(ConfigurationError, match="cascade provision"):
        await audit.history(dataset="never_provisioned").phase_durations(DAY)


@pytest.mark.emulator
async def test_a_dataset_without_the_audit_tables_is_a_configuration_error(audit: Audit) -> None:
    bare = f"bare_{uuid.uuid4().hex[:12]}"
    datasets = Dataset(bare, project=PROJECT, session=audit.session, api_root=audit.root)  # type: ignore[arg-type]
    await datasets.insert({"datasetReference": {"projectId": PROJECT, "datasetId": bare}})

    with pytest.raises(ConfigurationError, match=r"orchestration_events not found.*cascade provision"):
        await audit.history(dataset=bare).rows(DAY, DAY)


# -- Answers the emulator never gives: a scripted BigQuery ---------------------------------------------------


@dataclass
class Script:
    """What the stand-in answers: jobs.query's reply, then each getQueryResults reply in turn."""

    query: tuple[int, Any]
    results: list[tuple[int, Any]] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)  # getQueryResults query strings

    async def on_query(self, request: web.Request) -> web.Response:
        status, body = self.query
        return web.json_response(body, status=status)

    async def on_results(self, request: web.Request) -> web.Response:
        self.seen.append(dict(request.query))
        status, body = self.results.pop(0)
        return web.json_response(body, status=status)


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[BigQueryHistory]:
    app = web.Application()
    app.router.add_post("/bigquery/v2/projects/{p}/queries", script.on_query)
    app.router.add_get("/bigquery/v2/projects/{p}/queries/{job}", script.on_results)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    root = f"http://127.0.0.1:{runner.addresses[0][1]}/bigquery/v2"
    history = BigQueryHistory(PROJECT, "audit", api_root=root, page_rows=2)
    try:
        yield history
    finally:
        await history.close()
        await runner.cleanup()


def page(rows: Sequence[Row], token: str | None = None, complete: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobReference": {"projectId": PROJECT, "jobId": "job_1", "location": "EU"},
        "jobComplete": complete,
    }
    if complete:
        body["schema"] = {"fields": [{"name": "payload", "type": "STRING"}]}
        body["rows"] = [{"f": [{"v": canonical_json(r)}]} for r in rows]
    if token:
        body["pageToken"] = token
    return body


def error(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}


async def test_a_query_still_running_is_waited_for_then_read_page_by_page_in_its_location() -> None:
    rows = in_read_order(history_of_the_day())
    script = Script(
        query=(200, page([], complete=False)),
        results=[(200, page([], complete=False)), (200, page(rows[:4], "p2")), (200, page(rows[4:], None))],
    )
    async with scripted(script) as history:
        assert await history.rows(DAY, DAY) == rows
    assert [s.get("pageToken") for s in script.seen] == [None, None, "p2"]
    assert [s.get("location") for s in script.seen] == ["EU", "EU", "EU"]  # a job lives in one location
    assert all("timeoutMs" in s for s in script.seen[:2])  # polls are held by BigQuery, not slept here


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, error(503, "backendError", "The service is currently unavailable.")),
        (500, error(500, "internalError", "An internal error occurred.")),
        (429, {"error": {"code": 429, "message": "Too many requests"}}),
        (403, error(403, "rateLimitExceeded", "Exceeded rate limits: too many concurrent queries")),
        (400, error(400, "jobInternalError", "The job encountered an internal error during execution")),
    ],
    ids=["503", "500", "429", "403-rate-limit", "400-job-internal"],
)
async def test_outages_and_rate_limits_are_transient(status: int, body: Any) -> None:
    async with scripted(Script(query=(status, body))) as history:
        with pytest.raises(TransientError, match="try again later"):
            await history.rows(DAY, DAY)


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (404, error(404, "notFound", "Not found: Dataset p:audit was not found in location US"), "provision"),
        (403, error(403, "accessDenied", "Access Denied: User does not have bigquery.jobs.create"), "Access"),
        (400, error(400, "invalidQuery", "Unrecognized name: insert_id at [6:47]"), "Unrecognized name"),
    ],
    ids=["404", "403-access-denied", "400-old-table"],
)
async def test_refusals_are_configuration_errors_with_bigquerys_words(
    status: int, body: Any, says: str
) -> None:
    async with scripted(Script(query=(status, body))) as history:
        with pytest.raises(ConfigurationError, match=says):
            await history.rows(DAY, DAY)


async def test_a_job_that_fails_while_paging_is_translated_too() -> None:
    rows = in_read_order(history_of_the_day())
    script = Script(query=(200, page(rows[:2], "p2")), results=[(503, error(503, "backendError", "down"))])
    async with scripted(script) as history:
        with pytest.raises(TransientError):
            await history.rows(DAY, DAY)


async def test_bigquery_unreachable_is_transient() -> None:
    history = BigQueryHistory(PROJECT, "audit", api_root="http://127.0.0.1:9/bigquery/v2")
    try:
        with pytest.raises(TransientError, match="history query failed"):
            await history.rows(DAY, DAY)
    finally:
        await history.close()


@pytest.mark.parametrize(("project", "dataset"), [("p`; DROP", "audit"), (PROJECT, "audit.x"), (PROJECT, "")])
def test_ids_that_could_break_out_of_the_table_name_are_refused(project: str, dataset: str) -> None:
    with pytest.raises(ConfigurationError):
        BigQueryHistory(project, dataset)


@pytest.mark.emulator
async def test_a_replayed_day_read_back_from_bigquery_explains_exactly_as_its_timeline(audit: Audit) -> None:
    """The "same history, same explanation from every source" promise for BigQuery: a real replay's rows,
    stored through the sink and read back (in BigQuery's order), explain and score like the timeline."""
    from ops.policy_file import load_policy
    from ops.replay import read_recording, replay
    from views.eta import DurationBook
    from views.explain import explain, render_text
    from views.history import by_date
    from views.render import slo_report

    policy = load_policy(None)
    examples = Path(__file__).parents[2] / "examples"
    lines = (examples / "critical_never_reports.jsonl").read_text().splitlines()
    timeline = (await replay(read_recording(lines), policy)).timeline
    await audit.write(timeline)

    stored = await audit.history(page_rows=50).rows(DAY, DAY)

    def views_of(rows: list[Row]) -> tuple[Any, Any]:
        days = by_date(rows)
        explained = explain(days[DAY], policy, DurationBook.for_policy(policy, rows))
        return explained, slo_report(days.values(), policy, DAY, 30)

    from_timeline, from_bigquery = views_of(list(timeline)), views_of(stored)
    assert from_bigquery == from_timeline
    assert render_text(from_bigquery[0]) == render_text(from_timeline[0])
    assert "nbac_gamebook" in "\n".join(render_text(from_bigquery[0]))
