"""`cascade status | explain | slo` and the daemon's view routes, read as an operator would.

The same recorded day is read three ways (the timeline file, the daemon's JSON over HTTP, and — in the
contract suite — BigQuery) and must explain the same.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.clock import VirtualClock
from ops.cli import main
from ops.day_watch import DayWatch
from ops.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE
from ops.operator_view import OperatorView
from ops.policy_file import load_policy
from ops.replay import ReplayResult, read_recording, replay, write_timeline
from tests.support.operator_app import daemon_app
from views.eta import DurationBook
from views.explain import explain, render_text
from views.history import by_date, parse_time

EXAMPLES = Path(__file__).parents[2] / "examples"
DAY = "2026-02-03"


@pytest.fixture
async def critical_day() -> ReplayResult:
    lines = (EXAMPLES / "critical_never_reports.jsonl").read_text().splitlines()
    return await replay(read_recording(lines), load_policy(None))


@pytest.fixture
def timeline(tmp_path: Path, critical_day: ReplayResult) -> Path:
    path = tmp_path / "timeline.jsonl"
    write_timeline(critical_day.timeline, path)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_explain_from_a_timeline_names_the_missing_critical_input_and_both_deadlines(
    timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "explain", DAY, "--timeline", str(timeline))
    assert code == 0
    assert "nbac_gamebook                  critical NOT ARRIVED" in out
    assert "Missing: nbac_gamebook (critical)" in out
    assert "fallback  06:00 AM ET, Wed Feb 4: missed" in out
    assert "self_heal 08:00 AM ET, Wed Feb 4: failed: a critical input is still missing" in out
    assert "→ FAIL, manual intervention" in out
    assert "Trigger: none" in out
    assert "ERROR slo_violation: 2026-02-03 (overnight) failed and missed its SLO" in out  # date-wide alert


def test_explain_reads_gzipped_timelines_and_prints_json_for_scripts(
    timeline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = tmp_path / "timeline.jsonl.gz"
    packed.write_bytes(gzip.compress(timeline.read_bytes()))
    code, out, _ = run(capsys, "explain", DAY, "--timeline", str(packed), "--json")
    assert code == 0
    data = json.loads(out)
    [phase2] = [t for t in data["transitions"] if t["transition"] == "phase2_to_phase3"]
    assert phase2["missing"] == [{"processor": "nbac_gamebook", "critical": True}]
    assert [d["kind"] for d in phase2["deadlines"]] == ["fallback", "self_heal"]


def test_explain_of_a_date_not_in_the_timeline_says_which_dates_it_holds(
    timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "explain", "2026-02-05", "--timeline", str(timeline))
    assert code == EXIT_USAGE
    assert "no rows for 2026-02-05" in err and "2026-02-03 .. 2026-02-03" in err


def test_a_file_that_is_not_a_timeline_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = EXAMPLES / "critical_never_reports.jsonl"  # a recording, not a timeline
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    code, _, err = run(capsys, "explain", DAY, "--timeline", str(bad))
    assert code == EXIT_USAGE and f"{bad}:1:2: invalid JSON: " in err
    code, _, err = run(capsys, "slo", "--timeline", str(events))
    assert code == EXIT_USAGE and "not a timeline row" in err


def test_slo_from_a_timeline_prints_the_compliance_table_and_the_failed_date(
    timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "slo", "--timeline", str(timeline))
    assert code == 0
    table = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert table["end_to_end"].endswith("MISSED") and "0/1 dates" in table["end_to_end"]
    assert table["cascade_success_rate"].endswith("n/a")
    assert "2026-02-03  overnight failed" in out


def test_status_from_a_timeline_shows_phase_2_still_waiting_on_its_critical_input_and_the_rest_pending(
    timeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "status", DAY, "--timeline", str(timeline))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Game Date: 2026-02-03 (Overnight Mode)"
    assert lines[1] == (
        "Phase 2: ⛔ Waiting on a critical input (4/5, 80%) — waiting on critical nbac_gamebook; "
        "self-heal gave up: needs an operator"
    )
    assert lines[2:6] == [f"Phase {n}: ⏸️ Pending" for n in range(3, 7)]
    assert lines[6].startswith("Overall: 14% complete      ETA: no ETA: phase2_to_phase3 failed")


def test_status_without_a_router_says_how_to_reach_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--url", "http://127.0.0.1:9")
    assert code == EXIT_UNAVAILABLE
    assert "cannot reach the router at http://127.0.0.1:9" in err and "gcloud run services proxy" in err


# --- the daemon's routes --------------------------------------------------------------------------------


@pytest.fixture
async def client(critical_day: ReplayResult) -> AsyncIterator[TestClient[Any, Any]]:
    app = daemon_app(critical_day.rows, load_policy(None))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_the_daemon_explains_a_date_exactly_as_the_timeline_does(
    client: TestClient[Any, Any], critical_day: ReplayResult
) -> None:
    response = await client.get(f"/explain/{DAY}")
    assert response.status == 200
    served = await response.json()
    policy = load_policy(None)
    rows = json.loads(json.dumps(critical_day.timeline))  # as read back from the file
    local = explain(by_date(rows)[date.fromisoformat(DAY)], policy, DurationBook.for_policy(policy, rows))
    assert served == local
    assert render_text(served) == render_text(local)


async def test_the_board_and_slo_json_describe_the_failed_date(client: TestClient[Any, Any]) -> None:
    board = await (await client.get(f"/board/{DAY}")).json()
    [day] = board["dates"]
    assert day["state"] == "failed"
    assert day["phases"][0]["critical_missing"] == ["nbac_gamebook"]
    slo = await (await client.get("/slo", params={"days": "365"})).json()
    assert [d["game_date"] for d in slo["dates"]] == [DAY]


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/explain/2026-13-01", 400, "not a date"),
        ("/explain/20260203", 400, "not YYYY-MM-DD"),
        (f"/explain/{DAY}?transition=phase9", 400, "unknown transition"),
        ("/slo?days=0", 400, "days must be"),
        ("/board/2025-01-01", 404, "--bigquery"),
    ],
)
async def test_view_routes_refuse_bad_requests_with_a_reason(
    client: TestClient[Any, Any], path: str, status: int, says: str
) -> None:
    response = await client.get(path)
    assert response.status == status
    assert says in (await response.json())["error"]


def test_a_date_older_than_the_kept_window_is_pointed_at_bigquery() -> None:
    policy = load_policy(None)
    clock = VirtualClock(parse_time("2026-03-01T00:00:00Z"))
    view = OperatorView(DayWatch(policy, keep_rows=True), lambda: policy, clock, recent_days=3)
    old = clock.now().date() - timedelta(days=10)
    assert view.explain_json(old, None) is None
    assert f"cascade explain {old} --bigquery" in view.not_kept(old)
