"""/status, /healthz and /readyz bodies, built from the states of replayed example days."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import anyio
import pytest

from ops.replay import read_recording, replay
from ops.status import liveness, readiness, status
from policies.model import Policy
from router.keys import Key
from router.state import DateState
from tests.support.builders import utc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = utc("2026-02-05T19:00")


def states_of(name: str, policy: Policy) -> dict[Key, DateState]:
    with (EXAMPLES / name).open() as lines:
        deliveries = read_recording(lines, name)
    return anyio.run(replay, deliveries, policy, None).states


@pytest.fixture(scope="module")
def three_days(policy: Policy) -> dict[Key, DateState]:
    days = ["overnight_full_cascade.jsonl", "same_day_upcoming_only.jsonl", "critical_never_reports.jsonl"]
    return {k: v for name in days for k, v in states_of(name, policy).items()}


def test_status_lists_recent_dates_newest_first_and_transitions_in_order(
    three_days: dict[Key, DateState],
) -> None:
    body = status(three_days, since=date(2026, 1, 1), now=NOW)
    listed = [(k["game_date"], k["transition"]) for k in body["keys"]]
    assert listed == [
        ("2026-02-03", "phase2_to_phase3"),
        ("2026-01-15", "phase2_to_phase3"),
        ("2026-01-15", "phase3_to_phase4"),
        ("2026-01-15", "phase4_to_phase5"),
        ("2026-01-15", "phase5_to_phase6"),
    ]  # 2025-12-30 is before `since`
    assert body["since"] == "2026-01-01"
    assert body["generated_at"] == "2026-02-05T19:00:00Z"


def test_status_of_a_day_whose_critical_input_never_came_shows_why_it_failed(
    three_days: dict[Key, DateState],
) -> None:
    (entry,) = status(three_days, since=date(2026, 2, 3), now=NOW)["keys"]
    assert entry["mode"] == "overnight"
    assert entry["state"] == "failed"
    assert entry["decision"] == "WAIT"
    assert entry["missing"] == ["nbac_gamebook"]
    assert entry["reasons"] == ["critical processor(s) missing: nbac_gamebook"]
    assert entry["completeness"] == pytest.approx(0.8)
    assert entry["trigger"] is None
    assert entry["pending_trigger"] is None
    assert entry["breaker"] == {"state": "closed", "failures": 0, "opened_at": None}


def test_status_of_a_degraded_export_names_the_trigger_and_its_source(
    three_days: dict[Key, DateState],
) -> None:
    keys = status(three_days, since=date(2026, 1, 15), now=NOW)["keys"]
    export = next(k for k in keys if k["game_date"] == "2026-01-15" and k["transition"] == "phase5_to_phase6")
    assert export["mode"] == "same_day"
    assert export["state"] == "triggered_degraded"
    assert export["decision"] == "PROCEED_DEGRADED"
    assert export["completeness"] == pytest.approx(0.96)
    assert export["trigger"] == {
        "trigger_id": Key(date(2026, 1, 15), "phase5_to_phase6").trigger_id,
        "published_at": "2026-01-15T15:02:52Z",
        "source": "cascade",
        "degraded": True,
    }
    assert export["wake_at"] is None


def test_status_is_json_serialisable_as_is(three_days: dict[Key, DateState]) -> None:
    body = status(three_days, since=date(2025, 1, 1), now=NOW)
    assert len(body["keys"]) == len(three_days)
    assert json.loads(json.dumps(body)) == body


@pytest.mark.parametrize(
    ("tick_ago_s", "ack_ago_s", "ok"),
    [
        (5, None, True),  # never acked: a quiet pipeline is still alive
        (5, 6 * 3600, True),  # no message for hours: alive as long as the loop ticks
        (60, 1, True),  # exactly at the limit
        (61, 1, False),  # the loop stalled although acks were recent
        (None, 1, False),  # never ticked
    ],
)
def test_liveness_is_decided_by_loop_progress_and_reports_both_ages(
    tick_ago_s: float | None, ack_ago_s: float | None, ok: bool
) -> None:
    tick = NOW - timedelta(seconds=tick_ago_s) if tick_ago_s is not None else None
    ack = NOW - timedelta(seconds=ack_ago_s) if ack_ago_s is not None else None
    alive, body = liveness(NOW, tick, ack, max_stall_s=60)
    assert alive is ok
    assert body["ok"] is ok
    assert body["seconds_since_tick"] == tick_ago_s
    assert body["seconds_since_ack"] == ack_ago_s
    assert ("reason" in body) is not ok


def _ready(**changes: object) -> tuple[bool, dict[str, object]]:
    arguments: dict[str, object] = {
        "backends": {"pubsub": True, "state_store": True},
        "last_pull_at": NOW - timedelta(seconds=30),
        "max_pull_age_s": 300,
        "next_due": NOW - timedelta(seconds=2),
        "max_timer_lag_s": 60,
    }
    arguments.update(changes)
    return readiness(NOW, **arguments)  # type: ignore[arg-type]


def test_ready_when_connected_and_caught_up() -> None:
    ok, body = _ready()
    assert ok
    assert body["reasons"] == []
    assert body["timer_lag_s"] == 2


def test_a_future_timer_is_no_lag() -> None:
    ok, body = _ready(next_due=NOW + timedelta(minutes=5))
    assert ok
    assert body["timer_lag_s"] == 0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"backends": {"pubsub": True, "state_store": False}}, "state_store is not connected"),
        ({"last_pull_at": None}, "no successful pull yet"),
        ({"last_pull_at": NOW - timedelta(seconds=301)}, "last successful pull 301 s ago (limit 300 s)"),
        ({"next_due": NOW - timedelta(seconds=90)}, "timers are 90 s behind (limit 60 s)"),
        ({"stopping": True}, "shutting down"),
    ],
)
def test_not_ready_says_why(changes: dict[str, object], reason: str) -> None:
    ok, body = _ready(**changes)
    assert not ok
    assert body["ok"] is False
    assert body["reasons"] == [reason]
