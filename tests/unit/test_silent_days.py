"""A game day with no message at all is opened on the clock: its deadlines fire and the alerts name it."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from adapters.clock import VirtualClock
from adapters.memory import MemoryAuditSink, MemoryPublisher, MemoryStateStore
from ops.engine import Engine, EngineConfig
from ops.replay import ReplayResult, read_recording, replay
from policies.model import Mode, Policy
from router import events as ev
from router.effects import PinMode
from router.machine import step
from tests.support.builders import arrived, key, utc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _day(game_date: str, shift_days: int) -> list[str]:
    """The full overnight example day, moved to `game_date` (message ids, dates and instants shifted)."""
    from datetime import datetime, timedelta

    lines = []
    for line in (EXAMPLES / "overnight_full_cascade.jsonl").read_text().splitlines():
        row = json.loads(line)
        row["message_id"] = f"{game_date}-{row['message_id']}"
        moved = datetime.fromisoformat(row["at"].replace("Z", "+00:00")) + timedelta(days=shift_days)
        row["at"] = moved.isoformat()
        data = row["data"]
        data["game_date"] = game_date
        stamp = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00")) + timedelta(days=shift_days)
        data["timestamp"] = stamp.isoformat()
        lines.append(json.dumps(row))
    return lines


def _replay(lines: list[str], policy: Policy) -> ReplayResult:
    return anyio.run(replay, read_recording(lines), policy, None)


def test_a_silent_game_day_between_two_recorded_ones_fails_with_alerts_naming_it(policy: Policy) -> None:
    # 2026-02-02 and 2026-02-04 ran overnight; 2026-02-03 never sent anything.
    result = _replay(_day("2026-02-02", 34) + _day("2026-02-04", 36), policy)

    silent = result.states[key("phase2_to_phase3", "2026-02-03")]
    assert silent.mode is Mode.OVERNIGHT and silent.expected
    assert silent.opened_at == utc("2026-02-04T10:00")  # 05:00 ET
    alerts = [(r["alert"], r["at"]) for r in result.alerts() if r["game_date"] == "2026-02-03"]
    assert alerts == [
        ("fallback_deadline_missed", "2026-02-04T11:00:00Z"),
        ("self_heal", "2026-02-04T13:00:00Z"),
        ("manual_intervention_required", "2026-02-04T13:00:00Z"),
        ("slo_violation", "2026-02-04T13:00:00Z"),  # the date ended failed
    ]
    texts = [r["message"] for r in result.alerts() if r["transition"] == "phase2_to_phase3"]
    assert all(t.startswith("no completion at all for 2026-02-03") for t in texts)
    assert silent.phase.value == "failed"
    # The recorded days cascade as before, with no alert of their own.
    assert {r["game_date"] for r in result.triggers()} == {"2026-02-02", "2026-02-04"}
    assert [r for r in result.alerts() if r["game_date"] in ("2026-02-02", "2026-02-04")] == []


def test_a_long_silence_alerts_once(policy: Policy) -> None:
    result = _replay(_day("2026-02-02", 34) + _day("2026-02-04", 36), policy)

    silences = [r for r in result.alerts() if r["alert"] == "no_completions"]
    assert len(silences) == 1
    assert silences[0]["game_date"] is None


def test_off_days_between_recorded_days_are_not_opened(policy: Policy) -> None:
    # 2026-02-12 and 2026-02-19 frame the All-Star break (13..18): nothing in between is expected.
    result = _replay(_day("2026-02-12", 44) + _day("2026-02-19", 51), policy)

    assert sorted({str(k.game_date) for k in result.states}) == ["2026-02-12", "2026-02-19"]
    assert [r for r in result.alerts() if r["alert"] == "no_completions"] == []


def test_a_recording_of_one_date_opens_no_other(policy: Policy) -> None:
    result = _replay((EXAMPLES / "overnight_full_cascade.jsonl").read_text().splitlines(), policy)

    assert {str(k.game_date) for k in result.states} == {"2025-12-30"}
    assert not any(state.expected for state in result.states.values())


def test_the_calendar_opens_a_key_in_its_mode_and_pins_it(policy: Policy) -> None:
    opened = step(
        None, key("phase2_to_phase3", "2026-02-03"), ev.ExpectedDayStarted(), utc("2026-02-04T10:00"), policy
    )

    assert opened.state is not None and opened.state.mode is Mode.OVERNIGHT and opened.state.expected
    assert PinMode(key("phase2_to_phase3", "2026-02-03"), Mode.OVERNIGHT, False) in opened.effects


def test_a_key_that_is_open_already_is_not_reopened(policy: Policy) -> None:
    k = key("phase2_to_phase3", "2026-02-03")
    first = step(
        None, k, arrived("odds_game_lines", utc("2026-02-04T06:00")), utc("2026-02-04T06:00"), policy
    )
    again = step(first.state, k, ev.ExpectedDayStarted(), utc("2026-02-04T10:00"), policy)

    assert again.state == first.state and not again.effects


def _engine(policy: Policy, store: MemoryStateStore, clock: VirtualClock, instance: str) -> Engine:
    return Engine(lambda: policy, store, MemoryPublisher(), MemoryAuditSink(), clock, EngineConfig(instance))


def test_the_daemon_opens_yesterday_once_and_a_second_instance_agrees(policy: Policy) -> None:
    async def scenario() -> None:
        store, clock = MemoryStateStore(), VirtualClock(utc("2026-02-04T09:59"))
        first, second = _engine(policy, store, clock, "a"), _engine(policy, store, clock, "b")
        silent = key("phase2_to_phase3", "2026-02-03")

        assert await first.follow_calendar() == []  # 04:59 ET: not yet
        clock.set(utc("2026-02-04T10:00"))
        assert await first.follow_calendar() == [silent.game_date]
        assert await first.follow_calendar() == []  # each day once
        assert [r.mode for r in await store.recent(silent.game_date)] == [Mode.OVERNIGHT]  # pinned, shared

        await second.follow_calendar()  # opened elsewhere: merged in the shared mode, not opened again
        assert second.states[silent].mode is Mode.OVERNIGHT and not second.states[silent].expected

    anyio.run(scenario)
