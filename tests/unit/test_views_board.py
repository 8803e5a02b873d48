"""The recorded history and the day board: one history whatever order the rows come in, the policy's phases in
pipeline order, and each example day's board at its end and in the middle of it."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.deadlines import Deadlines, deadlines_for
from policies.model import Mode, Policy
from tests.support.view_rows import (
    ALL_EXAMPLES,
    CHAIN,
    CRITICAL_NEVER_REPORTS,
    GAME_DATE,
    OVERNIGHT_FULL_CASCADE,
    PHASE2,
    PHASE3,
    POLICY,
    SAME_DAY_UPCOMING_ONLY,
    alert_row,
    decision_row,
    game_date_of,
    input_row,
    phase_row,
    recording,
    recording_lines,
    replayed,
    replayed_lines,
    trigger_row,
)
from views.board import DayBoard, PhaseStatus, day_board
from views.eta import DurationBook
from views.explain import explain
from views.history import DayHistory, HistoryError, by_date
from views.phases import chain, phases
from views.render import board_json, board_text

T0 = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)


def board_at(name: str, until: datetime | None = None) -> DayBoard:
    rows = replayed(name, until)
    day = by_date(rows)[game_date_of(name)]
    now = until or max(datetime.fromisoformat(r["at"].replace("Z", "+00:00")) for r in rows)
    return day_board(day, POLICY, now, DurationBook.for_policy(POLICY))


def status_by_label(board: DayBoard) -> dict[str, PhaseStatus]:
    return {line.spec.label: line.status for line in board.phases}


# --- history ------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(ALL_EXAMPLES))
def test_rows_in_any_order_give_the_history_board_and_explanation_of_write_order(
    data: st.DataObject, name: str
) -> None:
    rows = replayed(name)
    shuffled = data.draw(st.permutations(rows))
    now = datetime(2030, 1, 1, tzinfo=UTC)

    written, returned = by_date(rows), by_date(shuffled)
    book_w, book_r = DurationBook.for_policy(POLICY, rows), DurationBook.for_policy(POLICY, shuffled)

    assert returned == written
    assert book_r.seen == book_w.seen
    for day, history in written.items():
        assert day_board(returned[day], POLICY, now, book_r) == day_board(history, POLICY, now, book_w)
        assert explain(returned[day], POLICY, book_r) == explain(history, POLICY, book_w)


def test_the_messages_of_a_per_table_trigger_are_one_trigger_with_their_count() -> None:
    rows = replayed(OVERNIGHT_FULL_CASCADE)
    messages = Counter(r["trigger_id"] for r in rows if r["kind"] == "trigger")

    history = by_date(rows)[game_date_of(OVERNIGHT_FULL_CASCADE)]

    assert {t.trigger_id: t.messages for t in history.triggers} == dict(messages)
    assert [t.transition for t in history.triggers] == CHAIN  # one per transition
    assert max(messages.values()) > 1  # the per-table transition really wrote several rows


def test_rows_without_a_game_date_are_skipped() -> None:
    rows = replayed(CRITICAL_NEVER_REPORTS)
    undated = [
        {"at": "2026-02-04T07:00:00Z", "kind": "dead_letter", "topic": "t", "message_id": "x", "reason": "r"},
        alert_row(datetime(2026, 2, 4, 7, tzinfo=UTC), "alerts_summarised", None, game_date=None),
        {**decision_row(T0, PHASE2, Mode.SAME_DAY), "game_date": ""},
    ]

    assert by_date([*undated, *rows]) == by_date(rows)


def test_the_row_builders_write_the_fields_of_the_recorded_rows() -> None:
    """The hand-built rows of these tests keep to the audit log's format (ops/audit_rows.py)."""
    recorded = {
        r["kind"]: set(r) for r in replayed(CRITICAL_NEVER_REPORTS) + replayed(OVERNIGHT_FULL_CASCADE)
    }
    built = [
        input_row(T0, PHASE2, "odds_game_lines"),
        decision_row(T0, PHASE2, Mode.SAME_DAY),
        trigger_row(T0, PHASE2, Mode.SAME_DAY),
        phase_row(PHASE2, Mode.SAME_DAY, T0, T0),
        alert_row(T0, "fallback_deadline_missed", PHASE2),
    ]

    assert {r["kind"]: set(r) for r in built} == {kind: recorded[kind] for kind in {r["kind"] for r in built}}


def _without(field: str) -> Any:
    return lambda row: {k: v for k, v in row.items() if k != field}


def _with(field: str, value: Any) -> Any:
    return lambda row: {**row, field: value}


@pytest.mark.parametrize(
    ("make", "spoil", "named"),
    [
        (lambda: decision_row(T0, PHASE2, Mode.SAME_DAY), _without("transition"), "'transition'"),
        (lambda: decision_row(T0, PHASE2, Mode.SAME_DAY), _with("mode", "weekly"), "'weekly'"),
        (lambda: decision_row(T0, PHASE2, Mode.SAME_DAY), _with("completeness", "high"), "'high'"),
        (lambda: input_row(T0, PHASE2, "odds_game_lines"), _with("at", "2026-01-15T14:00:00"), "time zone"),
        (lambda: input_row(T0, PHASE2, "odds_game_lines"), _without("message_id"), "'message_id'"),
        (lambda: trigger_row(T0, PHASE2, Mode.SAME_DAY), _without("trigger_id"), "'trigger_id'"),
        (lambda: phase_row(PHASE2, Mode.SAME_DAY, T0, T0), _with("opened_at", "yesterday"), "'yesterday'"),
        (lambda: input_row(T0, PHASE2, "odds_game_lines"), _with("game_date", "2026-13-40"), "2026-13-40"),
    ],
    ids=[
        "decision without transition",
        "unknown mode",
        "completeness not a number",
        "naive time",
        "input without message id",
        "trigger without id",
        "unreadable opened_at",
        "impossible game date",
    ],
)
def test_a_malformed_row_raises_a_history_error_naming_the_row_and_the_field(
    make: Any, spoil: Any, named: str
) -> None:
    good = input_row(T0 - timedelta(hours=1), PHASE2, "odds_game_lines")
    bad = spoil(make())

    with pytest.raises(HistoryError) as raised:
        by_date([good, bad])

    text = str(raised.value)
    assert f"({bad['kind']} of {bad['game_date']})" in text
    assert named in text


@pytest.mark.parametrize(("field", "value"), [("at", None), ("coverage", ["odds_game_lines"])])
def test_a_row_with_a_field_of_the_wrong_type_raises_a_history_error(field: str, value: Any) -> None:
    bad = {**decision_row(T0, PHASE2, Mode.SAME_DAY), field: value}

    with pytest.raises(HistoryError):
        by_date([bad])


def test_a_malformed_row_is_named_by_its_position_in_the_rows_as_given() -> None:
    later = input_row(T0 + timedelta(hours=1), PHASE2, "odds_game_lines")
    earlier_but_broken = {**decision_row(T0, PHASE2, Mode.SAME_DAY), "mode": "weekly"}

    with pytest.raises(HistoryError, match=r"audit row 2 "):
        by_date([later, earlier_but_broken])


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (datetime(2026, 1, 15, 14, 0, 13, tzinfo=UTC), datetime(2026, 1, 15, 14, 0, 13, 500000, tzinfo=UTC)),
        (
            datetime(2026, 1, 15, 14, 0, 13, 100000, tzinfo=UTC),
            datetime(2026, 1, 15, 14, 0, 13, 150000, tzinfo=UTC),
        ),
    ],
    ids=["whole second then a fraction", "one fraction a prefix of the next"],
)
def test_rows_within_one_second_are_read_in_time_order(earlier: datetime, later: datetime) -> None:
    """As text, '...13.5Z' sorts before '...13Z' and '...13.15Z' before '...13.1Z'; the daemon's clock
    writes such fractions."""
    rows = [
        decision_row(earlier, PHASE2, Mode.SAME_DAY, decision="WAIT", missing=["odds_player_props"]),
        decision_row(later, PHASE2, Mode.SAME_DAY, decision="PROCEED", completeness=1.0),
    ]

    checks = by_date(rows)[GAME_DATE].checks

    assert [c.at for c in checks] == [earlier, later]
    assert checks[-1].decision == "PROCEED"


def test_an_input_arriving_at_a_recheck_instant_is_not_shown_missing_on_the_board() -> None:
    """In replay a re-check due at the instant an input arrives runs first; the board must show the
    check the input caused, not the stale re-check."""
    lines = recording_lines(OVERNIGHT_FULL_CASCADE)[:2]
    first, second = json.loads(lines[0]), json.loads(lines[1])
    recheck_at = datetime.fromisoformat(first["at"].replace("Z", "+00:00")) + timedelta(
        seconds=POLICY.modes[Mode.OVERNIGHT].recheck_every_s or 0
    )
    second["at"] = recheck_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    arrived_name = "nbac_gamebook"
    assert second["data"]["processor_name"] == "NbacGamebookProcessor"
    rows = replayed_lines([lines[0], json.dumps(second)], until=recheck_at + timedelta(seconds=30))

    board = day_board(
        by_date(rows)[game_date_of(OVERNIGHT_FULL_CASCADE)],
        POLICY,
        recheck_at,
        DurationBook.for_policy(POLICY),
    )

    phase2 = board.phases[0]
    assert arrived_name not in phase2.missing
    assert {e.processor: e.coverage for e in phase2.expected}[arrived_name] == 1.0


# --- phases -------------------------------------------------------------------------------------------------


def test_the_nba_policy_shows_phases_2_to_6_with_their_roles() -> None:
    specs = phases(POLICY)

    assert [(s.label, s.role) for s in specs] == [
        ("Phase 2", "raw"),
        ("Phase 3", "analytics"),
        ("Phase 4", "precompute"),
        ("Phase 5", "predictions"),
        ("Phase 6", "export"),
    ]
    assert [s.transition for s in specs] == [*CHAIN, None]


def _policy_with(links: dict[str, str | None]) -> Policy:
    """The NBA policy with its transitions renamed and re-linked; specs are lent from the NBA ones in turn."""
    data = POLICY.model_dump()
    lent = list(data["transitions"].values())
    data["transitions"] = {name: {**lent[i], "next": nxt} for i, (name, nxt) in enumerate(links.items())}
    return Policy.model_validate(data)


@pytest.mark.parametrize(
    ("links", "order"),
    [
        ({"zeta": "alpha", "alpha": "mid", "mid": None}, ["zeta", "alpha", "mid"]),
        ({"c": None, "b": "c", "a": "b"}, ["a", "b", "c"]),
        # Two roots: each root's chain in turn, roots by name.
        (
            {"y_root": "x_next", "x_next": None, "b_root": "a_next", "a_next": None},
            ["b_root", "a_next", "y_root", "x_next"],
        ),
    ],
    ids=["names against the chain", "declared backwards", "two chains"],
)
def test_a_custom_policy_orders_its_phases_by_next_not_by_name(
    links: dict[str, str | None], order: list[str]
) -> None:
    policy = _policy_with(links)

    assert chain(policy) == order
    specs = phases(policy)
    assert [s.transition for s in specs] == [*order, None]
    assert specs[-1].label == f"after {order[-1]}"  # names without phase numbers are shown as they are


# --- the board of each example ------------------------------------------------------------------------------


def _deadlines(name: str, transition: str) -> Deadlines:
    mode = Mode.OVERNIGHT
    return deadlines_for(
        game_date_of(name), POLICY.modes[mode], POLICY.transitions[transition], POLICY.timezone
    )


def test_a_critical_input_that_never_reports_leaves_phase_2_waiting_on_it_and_needing_an_operator() -> None:
    board = board_at(CRITICAL_NEVER_REPORTS)
    due = _deadlines(CRITICAL_NEVER_REPORTS, PHASE2)

    phase2 = board.phases[0]
    # Still waiting, literally (the input arriving would trigger it), but self-heal gave up: an operator.
    assert phase2.status is PhaseStatus.WAITING and phase2.needs_operator
    assert phase2.detail.startswith("waiting on critical nbac_gamebook;")
    assert [e.processor for e in phase2.expected if e.critical and e.arrived_at is None] == ["nbac_gamebook"]
    fallback, self_heal = phase2.deadlines
    assert (fallback.kind, fallback.at, fallback.passed) == ("fallback", due.fallback_at, True)
    assert fallback.outcome is not None and fallback.outcome.startswith("missed")
    assert (self_heal.kind, self_heal.at, self_heal.passed) == ("self_heal", due.self_heal_at, True)
    assert phase2.next_deadline is None
    assert [line.status for line in board.phases[1:]] == [PhaseStatus.PENDING] * 4
    assert board.state == "failed" and board.eta.at is None


def test_between_fallback_and_self_heal_phase_2_waits_on_its_critical_input() -> None:
    due = _deadlines(CRITICAL_NEVER_REPORTS, PHASE2)
    assert due.fallback_at is not None and due.self_heal_at is not None
    middle = due.fallback_at + (due.self_heal_at - due.fallback_at) / 2

    board = board_at(CRITICAL_NEVER_REPORTS, middle)

    phase2 = board.phases[0]
    assert phase2.status is PhaseStatus.WAITING
    assert phase2.detail.endswith("waiting on critical nbac_gamebook")
    fallback, self_heal = phase2.deadlines
    assert fallback.passed and fallback.outcome is not None and fallback.outcome.startswith("missed")
    assert not self_heal.passed
    assert phase2.next_deadline == self_heal
    assert [line.status for line in board.phases[1:]] == [PhaseStatus.PENDING] * 4


@pytest.mark.parametrize(
    "change",
    ["alert suppressed by the rate limit", "alert written 4 ms after the deadline (a real clock)"],
)
def test_a_deadline_before_now_has_passed_whatever_its_alert_row_says(change: str) -> None:
    due = _deadlines(CRITICAL_NEVER_REPORTS, PHASE2)
    assert due.fallback_at is not None and due.self_heal_at is not None
    now = due.self_heal_at - timedelta(minutes=30)
    rows = replayed(CRITICAL_NEVER_REPORTS, now)
    [alert] = [r for r in rows if r["kind"] == "alert" and r["alert"] == "fallback_deadline_missed"]
    if change.startswith("alert suppressed"):
        rows.remove(alert)
    else:
        alert["at"] = (due.fallback_at + timedelta(milliseconds=4)).isoformat().replace("+00:00", "Z")

    board = day_board(
        by_date(rows)[game_date_of(CRITICAL_NEVER_REPORTS)], POLICY, now, DurationBook.for_policy(POLICY)
    )

    fallback, self_heal = board.phases[0].deadlines
    assert fallback.passed
    assert board.phases[0].next_deadline == self_heal


def test_a_full_overnight_cascade_is_complete_with_the_eta_done_at_its_last_trigger() -> None:
    rows = replayed(OVERNIGHT_FULL_CASCADE)
    last_trigger = max(
        datetime.fromisoformat(r["at"].replace("Z", "+00:00"))
        for r in rows
        if r["kind"] == "trigger" and r["transition"] == CHAIN[-1]
    )

    board = board_at(OVERNIGHT_FULL_CASCADE)

    assert board.mode is Mode.OVERNIGHT
    assert [line.status for line in board.phases] == [PhaseStatus.COMPLETE] * 4 + [PhaseStatus.TRIGGERED]
    assert board.eta.done and board.eta.at == last_trigger
    assert board.state == "complete" and board.overall_pct == 100
    assert not board.at_risk


def test_a_same_day_run_is_shown_in_same_day_mode_with_its_degraded_export() -> None:
    rows = replayed(SAME_DAY_UPCOMING_ONLY)
    degraded = {r["transition"] for r in rows if r["kind"] == "trigger" and r["degraded"]}
    assert degraded  # the example's export went out degraded

    board = board_at(SAME_DAY_UPCOMING_ONLY)

    assert board.mode is Mode.SAME_DAY
    statuses = {line.spec.transition: line.status for line in board.phases}
    assert {t for t, s in statuses.items() if s is PhaseStatus.DEGRADED} == degraded
    assert board.state == "complete"
    # Same-day expectations, not the overnight ones: only the same-day critical inputs are listed.
    phase3 = board.phases[1]
    same_day = POLICY.transitions[PHASE3].expectation(Mode.SAME_DAY)
    assert [e.processor for e in phase3.expected] == list(same_day.all)


def _delivered_before(name: str, until: datetime, topic: str) -> int:
    return len({d.data["processor_name"] for d in recording(name) if d.at <= until and d.topic == topic})  # type: ignore[index]


@pytest.mark.parametrize(
    ("until", "phase", "status", "topic", "transition"),
    [
        (
            datetime(2025, 12, 31, 6, 35, tzinfo=UTC),
            "Phase 2",
            PhaseStatus.IN_PROGRESS,
            "nba-phase2-raw-complete",
            PHASE2,
        ),
        (
            datetime(2025, 12, 31, 7, 5, tzinfo=UTC),
            "Phase 3",
            PhaseStatus.WAITING,
            "nba-phase3-analytics-complete",
            PHASE3,
        ),
    ],
    ids=["phase 2 with every critical in", "phase 3 before its critical"],
)
def test_a_board_in_the_middle_of_the_day_counts_the_inputs_in_so_far(
    until: datetime, phase: str, status: PhaseStatus, topic: str, transition: str
) -> None:
    arrived = _delivered_before(OVERNIGHT_FULL_CASCADE, until, topic)
    expected = len(POLICY.transitions[transition].expectation(Mode.OVERNIGHT).all)
    assert 0 < arrived < expected  # the instant really is in the middle of the phase

    board = board_at(OVERNIGHT_FULL_CASCADE, until)

    line = next(line for line in board.phases if line.spec.label == phase)
    assert line.status is status
    assert (line.arrived, len(line.expected)) == (arrived, expected)
    shown = next(x for x in board_text(board_json(board)) if x.startswith(f"{phase}:"))
    assert f"({arrived}/{expected}, {round(100 * arrived / expected)}%)" in shown
    later = board.phases[[line.spec.label for line in board.phases].index(phase) + 1 :]
    assert {line.status for line in later} == {PhaseStatus.PENDING}
    assert board.state == "in_progress"
    assert not board.eta.done and board.eta.at is not None and board.eta.at > until
    assert 0 < board.overall_pct < 100


def test_a_date_with_no_rows_yet_is_pending_everywhere() -> None:
    board = day_board(DayHistory(GAME_DATE), POLICY, T0, DurationBook.for_policy(POLICY))

    assert set(status_by_label(board).values()) == {PhaseStatus.PENDING}
    assert board.state == "pending" and board.overall_pct == 0
