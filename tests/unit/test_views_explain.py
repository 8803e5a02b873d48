"""`cascade explain`: why a date's transitions did or did not trigger, as JSON any source renders alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ops.cli import main
from ops.exit_codes import EXIT_USAGE
from ops.replay import write_timeline
from policies.deadlines import deadlines_for
from policies.model import Mode
from tests.support.view_rows import (
    ALL_EXAMPLES,
    CHAIN,
    CRITICAL_NEVER_REPORTS,
    OVERNIGHT_FULL_CASCADE,
    PHASE2,
    PHASE3,
    POLICY,
    SAME_DAY_UPCOMING_ONLY,
    decision_row,
    game_date_of,
    input_row,
    recording,
    replayed,
)
from views.board import local_text
from views.eta import DurationBook
from views.explain import explain, render_text
from views.history import by_date

BOOK = DurationBook.for_policy(POLICY)


def explained(name: str, transition: str | None = None, until: datetime | None = None) -> dict[str, Any]:
    day = by_date(replayed(name, until))[game_date_of(name)]
    return explain(day, POLICY, BOOK, transition)


def test_a_critical_input_that_never_reports_is_named_with_both_deadlines_in_the_json() -> None:
    data = explained(CRITICAL_NEVER_REPORTS)
    due = deadlines_for(
        game_date_of(CRITICAL_NEVER_REPORTS),
        POLICY.modes[Mode.OVERNIGHT],
        POLICY.transitions[PHASE2],
        POLICY.timezone,
    )

    assert data["outcome"] == "failed" and data["mode"] == "overnight"
    phase2 = data["transitions"][0]
    assert phase2["transition"] == PHASE2
    assert [m for m in phase2["missing"] if m["critical"]] == [
        {"processor": "nbac_gamebook", "critical": True}
    ]
    assert phase2["trigger"] is None
    deadlines = {d["kind"]: d for d in phase2["deadlines"]}
    assert set(deadlines) == {"fallback", "self_heal"}
    for kind, when in (("fallback", due.fallback_at), ("self_heal", due.self_heal_at)):
        assert when is not None
        assert deadlines[kind]["at"] == when.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert deadlines[kind]["passed"] and deadlines[kind]["outcome"]
    assert deadlines["fallback"]["outcome"].startswith("missed")
    outcomes = [s["outcome"] for s in phase2["steps"]]
    assert outcomes.index("fallback_deadline_missed") < outcomes.index("manual_intervention_required")
    assert outcomes[-1] == "END"


def test_a_critical_input_that_never_reports_is_named_with_both_deadlines_in_the_text() -> None:
    due = deadlines_for(
        game_date_of(CRITICAL_NEVER_REPORTS),
        POLICY.modes[Mode.OVERNIGHT],
        POLICY.transitions[PHASE2],
        POLICY.timezone,
    )
    assert due.fallback_at is not None and due.self_heal_at is not None

    lines = render_text(explained(CRITICAL_NEVER_REPORTS))

    assert lines[0] == f"Game date {game_date_of(CRITICAL_NEVER_REPORTS)}: failed"
    section = lines[lines.index(next(x for x in lines if x.startswith(f"{PHASE2}:"))) :]
    section = section[: section.index("")] if "" in section else section
    missing = next(x for x in section if x.startswith("  Missing:"))
    assert "nbac_gamebook (critical)" in missing
    assert any(x.strip().startswith("nbac_gamebook") and "NOT ARRIVED" in x for x in section)
    fallback = next(x for x in section if x.strip().startswith("fallback "))
    self_heal = next(x for x in section if x.strip().startswith("self_heal "))
    assert local_text(due.fallback_at, POLICY.timezone) in fallback and "missed" in fallback
    assert local_text(due.self_heal_at, POLICY.timezone) in self_heal and "ahead" not in self_heal


@pytest.mark.parametrize("name", ALL_EXAMPLES)
@pytest.mark.parametrize("cut_after", [None, timedelta(hours=1)], ids=["whole day", "an hour in"])
def test_the_json_round_trips_and_renders_exactly_as_the_data_it_was_made_from(
    name: str, cut_after: timedelta | None
) -> None:
    until = recording(name)[0].at + cut_after if cut_after else None
    for day in by_date(replayed(name, until)).values():
        data = explain(day, POLICY, BOOK)

        again = json.loads(json.dumps(data))

        assert again == data
        assert render_text(again) == render_text(data)


def test_one_transition_is_explained_alone_and_as_in_the_whole_explanation() -> None:
    whole = explained(OVERNIGHT_FULL_CASCADE)

    one = explained(OVERNIGHT_FULL_CASCADE, PHASE3)

    assert [t["transition"] for t in whole["transitions"]] == CHAIN
    assert [t["transition"] for t in one["transitions"]] == [PHASE3]
    assert one["transitions"][0] == whole["transitions"][CHAIN.index(PHASE3)]
    headings = [x.split(":")[0] for x in render_text(one) if x and not x.startswith((" ", "Game", "Mode"))]
    assert headings == [PHASE3]


def test_a_per_table_trigger_is_explained_as_one_trigger_with_its_messages() -> None:
    rows = replayed(OVERNIGHT_FULL_CASCADE)
    messages = sum(1 for r in rows if r["kind"] == "trigger" and r["transition"] == PHASE3)

    trigger = explained(OVERNIGHT_FULL_CASCADE, PHASE3)["transitions"][0]["trigger"]

    assert trigger["messages"] == messages
    assert trigger["source"] == "cascade" and trigger["degraded"] is False
    assert any(
        x.startswith(f"  Trigger: {trigger['trigger_id']} at ")
        for x in render_text(explained(OVERNIGHT_FULL_CASCADE, PHASE3))
    )


@pytest.mark.parametrize(
    ("name", "mode", "reason"),
    [
        (
            OVERNIGHT_FULL_CASCADE,
            "overnight",
            "detected from the calendar: first input 1 day(s) after the game date",
        ),
        (SAME_DAY_UPCOMING_ONLY, "same_day", "detected from the calendar: first input on the game date"),
    ],
)
def test_the_mode_is_explained_by_the_calendar_day_of_the_first_input(
    name: str, mode: str, reason: str
) -> None:
    data = explained(name)

    assert data["mode"] == mode
    assert data["mode_reason"].startswith(reason)


def test_a_mode_a_message_asked_for_is_explained_as_explicit() -> None:
    first = datetime(2026, 1, 16, 6, tzinfo=UTC)  # the night after: the calendar would say overnight
    rows = [
        input_row(
            first, PHASE2, "odds_game_lines", raw_name="OddsApiGameLinesProcessor", mode_hint="same_day"
        ),
        decision_row(first, PHASE2, Mode.SAME_DAY, missing=["odds_player_props"]),
    ]
    day = by_date(rows)[first.date().replace(day=15)]

    data = explain(day, POLICY, BOOK)

    assert data["mode_reason"].startswith("explicit: OddsApiGameLinesProcessor said same_day")


def test_a_date_with_no_rows_is_explained_as_not_started() -> None:
    from views.history import DayHistory

    data = explain(DayHistory(game_date_of(OVERNIGHT_FULL_CASCADE)), POLICY, BOOK)

    assert data["outcome"] == "pending" and data["mode"] is None
    assert data["mode_reason"] == "no input recorded yet"
    assert all(t["steps"] == [] and t["trigger"] is None for t in data["transitions"])


def test_the_explain_command_shows_only_the_transition_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline = tmp_path / "timeline.jsonl"
    write_timeline(replayed(OVERNIGHT_FULL_CASCADE), timeline)
    day = game_date_of(OVERNIGHT_FULL_CASCADE).isoformat()

    code = main(["explain", day, "--timeline", str(timeline), "--transition", PHASE3, "--json"])

    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data == explained(OVERNIGHT_FULL_CASCADE, PHASE3)


def test_the_explain_command_refuses_a_transition_the_policy_does_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline = tmp_path / "timeline.jsonl"
    write_timeline(replayed(OVERNIGHT_FULL_CASCADE), timeline)
    day = game_date_of(OVERNIGHT_FULL_CASCADE).isoformat()

    code = main(["explain", day, "--timeline", str(timeline), "--transition", "phase9_to_phase10"])

    assert code == EXIT_USAGE
    assert "unknown transition 'phase9_to_phase10'" in capsys.readouterr().err
