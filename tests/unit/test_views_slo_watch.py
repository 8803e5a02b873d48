"""SLOs and the live date watch: each date's outcome row, compliance over the window, and the alerts only a
whole date can raise (slo_at_risk, pipeline_stuck, slo_violation), alone and through the engine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ops.day_watch import DayWatch
from policies.deadlines import deadlines_for
from policies.model import Mode
from router.effects import Source
from router.keys import Key
from router.state import DateState, Phase, Published
from tests.support import view_rows
from tests.support.view_rows import (
    CHAIN,
    CRITICAL_NEVER_REPORTS,
    GAME_DATE,
    OVERNIGHT_FULL_CASCADE,
    PHASE2,
    PHASE3,
    SAME_DAY_UPCOMING_ONLY,
    Row,
    completed,
    decision_row,
    failed,
    input_row,
    opened,
    policy_with_slo,
    pulse_of,
    recording_lines,
    replayed,
    replayed_lines,
)
from views.eta import DurationBook
from views.pulse import DatePulse
from views.slo import Compliance, compliance, outcome
from views.watch import Verdict, WatchFlags, assess, next_due

NBA = view_rows.POLICY
SD, ON = Mode.SAME_DAY, Mode.OVERNIGHT
# Every target and threshold the expectations below follow from is set here.
POLICY = policy_with_slo(
    modes={
        "overnight": {"end_to_end_s": 28800, "completeness": 1.0, "quality": 0.95},
        "same_day": {"end_to_end_s": 7200, "completeness": 0.8, "quality": 0.9},
        "manual": {},
    },
    cascade_success_rate=0.95,
    self_heal_share_max=0.20,
    dates_met_target=0.95,
    window_days=30,
    stuck_after_s=7200,
    stuck_modes=["same_day"],
    default_transition_s=1800,
    eta_history_days=14,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def day_of(
    mode: Mode,
    first: datetime,
    steps_s: list[int],
    sources: list[str] | None = None,
    game_date: date = GAME_DATE,
    completeness: float = 1.0,
    quality: float = 1.0,
) -> list[Row]:
    """A date whose transitions trigger one after the other, each `steps_s[i]` seconds after it opened."""
    rows: list[Row] = []
    cursor = first
    for i, (transition, seconds) in enumerate(zip(CHAIN, steps_s, strict=False)):
        end = cursor + timedelta(seconds=seconds)
        source = sources[i] if sources else "cascade"
        export = i == len(CHAIN) - 1
        rows += completed(
            transition,
            mode,
            cursor,
            end,
            game_date,
            source,
            completeness if export else 1.0,
            quality if export else 1.0,
        )
        cursor = end
    return rows


def results(row: dict[str, Any]) -> dict[str, tuple[float | None, bool]]:
    return {r["slo"]: (r["actual"], r["met"]) for r in row["results"]}


# --- a date's outcome row -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    name: str
    mode: Mode
    steps_s: list[int]
    completeness: float
    quality: float
    expected: dict[str, tuple[float | None, bool]]


OUTCOMES = [
    Outcome(
        "same day exactly on its latency target",
        SD,
        [1800] * 4,
        1.0,
        1.0,
        {"end_to_end": (7200.0, True), "completeness": (1.0, True), "quality": (1.0, True)},
    ),
    Outcome(
        "same day a second late",
        SD,
        [1800, 1800, 1800, 1801],
        1.0,
        1.0,
        {"end_to_end": (7201.0, False), "completeness": (1.0, True), "quality": (1.0, True)},
    ),
    Outcome(
        "same day degraded below its completeness target",
        SD,
        [600] * 4,
        0.75,
        1.0,
        {"end_to_end": (2400.0, True), "completeness": (0.75, False), "quality": (1.0, True)},
    ),
    Outcome(
        "same day degraded within its targets",
        SD,
        [600] * 4,
        0.8,
        0.9,
        {"end_to_end": (2400.0, True), "completeness": (0.8, True), "quality": (0.9, True)},
    ),
    Outcome(
        "overnight: the same latency is well within its longer target",
        ON,
        [7200] * 4,
        1.0,
        0.96,
        {"end_to_end": (28800.0, True), "completeness": (1.0, True), "quality": (0.96, True)},
    ),
    Outcome(
        "overnight below its quality target",
        ON,
        [600] * 4,
        1.0,
        0.94,
        {"end_to_end": (2400.0, True), "completeness": (1.0, True), "quality": (0.94, False)},
    ),
    Outcome("manual: no objective to miss", Mode.MANUAL, [60000] * 4, 0.5, 0.5, {}),
]


@pytest.mark.parametrize("case", OUTCOMES, ids=[c.name for c in OUTCOMES])
def test_a_complete_date_is_judged_from_its_first_input_to_its_last_trigger(case: Outcome) -> None:
    first = at("2026-01-15T14:00")
    rows = day_of(case.mode, first, case.steps_s, completeness=case.completeness, quality=case.quality)
    last_trigger = first + timedelta(seconds=sum(case.steps_s))

    row = outcome(pulse_of(rows), POLICY)

    assert row is not None
    assert (row["kind"], row["outcome"], row["mode"]) == ("slo", "complete", case.mode.value)
    assert row["end_to_end_s"] == (last_trigger - first).total_seconds()
    assert row["at"] == row["ended_at"] == last_trigger.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert results(row) == case.expected
    assert row["triggered"] == len(CHAIN) and row["by_source"]["cascade"] == len(CHAIN)


def test_a_failed_date_ends_when_its_transition_failed_and_misses_every_objective() -> None:
    rows = [
        *completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")),
        *failed(PHASE3, SD, at("2026-01-15T14:20"), at("2026-01-15T18:30")),
    ]

    row = outcome(pulse_of(rows), POLICY)

    assert row is not None
    assert (row["outcome"], row["ended_at"], row["end_to_end_s"]) == ("failed", "2026-01-15T18:30:00Z", None)
    assert results(row)["end_to_end"] == (None, False)
    assert row["triggered"] == 1 and row["by_source"]["cascade"] == 1


@pytest.mark.parametrize(
    "rows",
    [
        [],
        opened(PHASE2, SD, at("2026-01-15T14:00")),
        completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")),
    ],
    ids=["no rows", "phase 2 open", "phase 2 triggered"],
)
def test_a_date_that_has_not_ended_has_no_outcome_row(rows: list[Row]) -> None:
    assert outcome(pulse_of(rows), POLICY) is None


def test_end_to_end_latency_counts_from_the_first_phase_2_input() -> None:
    early_phase3 = input_row(at("2026-01-15T13:00"), PHASE3, "upcoming_player_game_context")
    rows = [early_phase3, *day_of(SD, at("2026-01-15T14:00"), [900] * 4)]

    row = outcome(pulse_of(rows), POLICY)

    assert row is not None and row["end_to_end_s"] == 3600.0


# --- compliance over the window -----------------------------------------------------------------------------

UNTIL = date(2026, 1, 31)


def slo_row(
    game_date: date, steps_s: list[int] | None = None, sources: list[str] | None = None
) -> dict[str, Any]:
    first = datetime(game_date.year, game_date.month, game_date.day, 14, tzinfo=UTC)
    rows = day_of(SD, first, steps_s or [600] * 4, sources, game_date)
    row = outcome(pulse_of(rows, game_date), POLICY)
    assert row is not None
    return row


def by_name(found: list[Compliance]) -> dict[str, Compliance]:
    return {c.slo: c for c in found}


def test_per_date_objectives_are_the_share_of_the_windows_dates_that_met_them() -> None:
    days = [UNTIL - timedelta(days=n) for n in range(4)]
    rows = [slo_row(days[0], [1800, 1800, 1800, 1801]), *(slo_row(d) for d in days[1:])]

    found = by_name(compliance(rows, POLICY, UNTIL))

    latency = found["end_to_end"]
    assert (latency.met, latency.total, latency.ratio, latency.ok) == (3, 4, 0.75, False)
    assert latency.target == POLICY.slo.dates_met_target and latency.kind == "dates met"
    assert (found["completeness"].met, found["completeness"].total, found["completeness"].ok) == (4, 4, True)


def test_rolling_objectives_are_ratios_of_the_windows_triggers() -> None:
    rows = [
        slo_row(UNTIL, sources=["cascade", "self_heal", "cascade", "cascade"]),
        slo_row(UNTIL - timedelta(days=1), sources=["fallback", "cascade", "cascade", "cascade"]),
    ]

    found = by_name(compliance(rows, POLICY, UNTIL))

    rate, share = found["cascade_success_rate"], found["self_heal_share"]
    assert (rate.met, rate.total, rate.ratio, rate.ok) == (6, 8, 6 / 8, False)
    assert (share.met, share.total, share.ratio, share.ok) == (1, 8, 1 / 8, True)
    assert rate.kind == share.kind == "of triggers"


def test_dates_outside_the_window_are_ignored() -> None:
    inside = [slo_row(UNTIL), slo_row(UNTIL - timedelta(days=POLICY.slo.window_days - 1))]
    slow, healed = [3600] * 4, ["self_heal"] * 4  # would miss every objective
    outside = [
        slo_row(UNTIL - timedelta(days=POLICY.slo.window_days), slow, healed),  # one day too old
        slo_row(UNTIL + timedelta(days=1), slow, healed),  # after `until`
    ]

    found = by_name(compliance([*outside, *inside], POLICY, UNTIL))

    assert found == by_name(compliance(inside, POLICY, UNTIL))
    assert (found["end_to_end"].total, found["end_to_end"].ok) == (2, True)
    assert (found["self_heal_share"].met, found["cascade_success_rate"].ratio) == (0, 1.0)


def test_an_empty_window_measures_nothing_and_breaks_nothing() -> None:
    found = compliance([], POLICY, UNTIL)

    assert {(c.ratio, c.ok, c.total) for c in found} == {(None, True, 0)}
    assert [c.slo for c in found] == [
        "end_to_end",
        "completeness",
        "quality",
        "cascade_success_rate",
        "self_heal_share",
    ]


def test_a_self_heal_share_at_its_max_is_within_the_objective() -> None:
    policy = policy_with_slo(self_heal_share_max=0.25)
    rows = [slo_row(UNTIL, sources=["cascade", "self_heal", "cascade", "cascade"])]

    share = by_name(compliance(rows, policy, UNTIL))["self_heal_share"]

    assert share.ratio == 0.25
    assert share.ok


# --- the watch, driven with explicit instants ---------------------------------------------------------------

BOOK = DurationBook.for_policy(POLICY)


def names(verdict: Verdict) -> list[str]:
    return [a.effect.alert for a in verdict.alerts]


def watch(pulse: DatePulse, flags: WatchFlags, now: datetime) -> Verdict:
    return assess(pulse, flags, POLICY, BOOK, now)


def test_slo_at_risk_is_raised_once_when_the_eta_passes_the_deadline_still_ahead() -> None:
    # First input 14:00: the same-day deadline is 16:00. Phase 2 open, default 30 min per transition: the
    # ETA is 16:00 until phase 2 is overdue, then now + 90 min.
    pulse, flags = pulse_of(opened(PHASE2, SD, at("2026-01-15T14:00"))), WatchFlags()
    nows = ["14:10", "14:30", "14:31", "14:40", "15:00", "15:59"]

    raised = {now: names(watch(pulse, flags, at(f"2026-01-15T{now}"))) for now in nows}

    assert raised == {now: (["slo_at_risk"] if now == "14:31" else []) for now in nows}
    assert flags.at_risk


def test_the_at_risk_alert_says_where_the_date_is_what_is_missing_and_what_comes_next() -> None:
    rows = [
        input_row(at("2026-01-15T14:00"), PHASE2, "odds_game_lines"),
        decision_row(at("2026-01-15T14:00"), PHASE2, SD, missing=["odds_player_props"]),
    ]
    fallback = deadlines_for(
        GAME_DATE, POLICY.modes[SD], POLICY.transitions[PHASE2], POLICY.timezone
    ).fallback_at

    [alert] = watch(pulse_of(rows), WatchFlags(), at("2026-01-15T14:45")).alerts

    assert alert.effect.alert == "slo_at_risk" and alert.effect.transition == PHASE2
    assert (alert.mode, alert.missing) == ("same_day", ("odds_player_props",))
    assert alert.next_at == fallback and alert.next_action == f"fallback deadline of {PHASE2}"


def test_slo_at_risk_is_not_raised_once_the_deadline_passed() -> None:
    pulse, flags = pulse_of(opened(PHASE2, SD, at("2026-01-15T14:00"))), WatchFlags()

    verdict = watch(pulse, flags, at("2026-01-15T16:01"))

    assert "slo_at_risk" not in names(verdict)
    assert not flags.at_risk


# (now, a new input arrives at that instant, pipeline_stuck raised for a date in stuck_modes)
STUCK_STEPS = [
    ("15:30", False, False),  # a re-check (a decision) happens here too: no progress
    ("15:59", False, False),
    ("16:00", False, True),  # 14:00 + stuck_after_s
    ("16:30", False, False),  # raised once for that stall
    ("17:00", True, False),  # progress
    ("18:59", False, False),
    ("19:00", False, True),  # the new stall
    ("21:00", False, False),
]


@pytest.mark.parametrize(
    ("mode", "watched"), [(SD, True), (ON, False)], ids=["same day", "overnight: never (default stuck_modes)"]
)
def test_pipeline_stuck_is_raised_after_stuck_after_s_without_progress_and_again_only_after_new_progress(
    mode: Mode, watched: bool
) -> None:
    pulse, flags = pulse_of(opened(PHASE2, mode, at("2026-01-15T14:00"))), WatchFlags()
    raised = []
    for now, new_input, _ in STUCK_STEPS:
        instant = at(f"2026-01-15T{now}")
        pulse.absorb(decision_row(instant, PHASE2, mode, cause="timer"))
        if new_input:
            pulse.absorb(input_row(instant, PHASE2, "odds_player_props"))
        raised.append("pipeline_stuck" in names(watch(pulse, flags, instant)))

    assert raised == [stuck and watched for _, _, stuck in STUCK_STEPS]


@pytest.mark.parametrize(
    ("progress", "due"),
    [
        ([input_row(at("2026-01-15T14:00"), PHASE2, "odds_game_lines")], at("2026-01-15T16:00")),
        (completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")), at("2026-01-15T16:20")),
    ],
    ids=["an input", "a trigger"],
)
def test_the_stuck_check_is_due_stuck_after_s_after_the_newest_input_or_trigger(
    progress: list[Row], due: datetime
) -> None:
    rows = [*progress, decision_row(at("2026-01-15T15:00"), PHASE3, SD, cause="timer")]
    now = at("2026-01-15T15:30")  # past the instant the ETA would pass the SLO deadline: only stuck is ahead

    assert next_due(pulse_of(rows), WatchFlags(), POLICY, DurationBook.for_policy(POLICY), now) == due


def test_slo_violation_names_the_objective_its_target_and_the_actual_when_a_date_ends() -> None:
    rows = day_of(SD, at("2026-01-15T14:00"), [1800, 1800, 1800, 1900])  # 7300 s: 122 min against 120
    pulse, flags = pulse_of(rows), WatchFlags()

    verdict = watch(pulse, flags, at("2026-01-15T16:02"))

    assert verdict.slo_row == outcome(pulse, POLICY)
    [alert] = verdict.alerts
    assert alert.effect.alert == "slo_violation" and alert.effect.transition is None
    assert "end_to_end 122 min (target 120 min)" in alert.effect.message
    assert "completeness" not in alert.effect.message  # only what was missed
    assert flags.ended


def test_a_date_that_met_its_objectives_ends_with_its_slo_row_and_no_alert() -> None:
    pulse = pulse_of(day_of(SD, at("2026-01-15T14:00"), [600] * 4))

    verdict = watch(pulse, WatchFlags(), at("2026-01-15T14:40"))

    assert verdict.alerts == () and verdict.slo_row is not None and verdict.slo_row["outcome"] == "complete"


def test_nothing_is_raised_for_a_date_after_it_ended() -> None:
    pulse, flags = pulse_of(day_of(SD, at("2026-01-15T14:00"), [1800, 1800, 1800, 1900])), WatchFlags()
    assert watch(pulse, flags, at("2026-01-15T16:02")).alerts  # the violation, once

    pulse.absorb(input_row(at("2026-01-15T16:30"), PHASE3, "upcoming_team_game_context"))  # a late input
    later = [watch(pulse, flags, at(f"2026-01-15T{hh}:00")) for hh in ("17", "19", "23")]

    assert later == [Verdict()] * 3
    assert next_due(pulse, flags, POLICY, DurationBook.for_policy(POLICY), at("2026-01-15T23:00")) is None


def test_a_violation_never_lists_an_objective_whose_actual_meets_its_target() -> None:
    rows = [
        *completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")),
        *failed(PHASE3, SD, at("2026-01-15T14:20"), at("2026-01-15T18:30")),
    ]

    [alert] = watch(pulse_of(rows), WatchFlags(), at("2026-01-15T18:30")).alerts

    assert "end_to_end never reached the last trigger" in alert.effect.message
    assert "completeness 1.00 (target 0.80)" not in alert.effect.message


# --- through the engine -------------------------------------------------------------------------------------


def _instant(row: Row) -> datetime:
    return datetime.fromisoformat(row["at"].replace("Z", "+00:00"))


def _times(rows: list[Row], kind: str, **match: Any) -> list[datetime]:
    return [_instant(r) for r in rows if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]


def test_a_same_day_whose_phase_3_never_arrives_is_reported_stuck_at_risk_and_then_missed() -> None:
    """The same-day example cut after its phase-2 inputs: phase 3's only critical input never arrives."""
    phase2_only = [
        line for line in recording_lines(SAME_DAY_UPCOMING_ONLY) if "phase2-raw" in json.loads(line)["topic"]
    ]
    rows = replayed_lines(phase2_only)
    game_date = date.fromisoformat(rows[0]["game_date"])
    first_input = min(_times(rows, "input"))
    last_progress = max(_times(rows, "input") + _times(rows, "trigger"))
    slo_deadline = first_input + timedelta(seconds=NBA.slo.for_mode(SD).end_to_end_s or 0)
    phase3_due = deadlines_for(game_date, NBA.modes[SD], NBA.transitions[PHASE3], NBA.timezone)
    critical = list(NBA.transitions[PHASE3].expectation(SD).critical)

    stuck = [r for r in rows if r["kind"] == "alert" and r["alert"] == "pipeline_stuck"]
    at_risk = [r for r in rows if r["kind"] == "alert" and r["alert"] == "slo_at_risk"]
    [slo] = [r for r in rows if r["kind"] == "slo"]

    assert _times(stuck, "alert") == [last_progress + timedelta(seconds=NBA.slo.stuck_after_s)]
    assert len(at_risk) == 1 and _times(at_risk, "alert")[0] < slo_deadline
    for alert in (*stuck, *at_risk):
        assert alert["transition"] == PHASE3 and alert["mode"] == "same_day"
        assert alert["missing"] == critical
        assert alert["next_action"] == f"fallback deadline of {PHASE3}"
        assert alert["next_at"] == phase3_due.fallback_at.strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[union-attr]
    assert slo["outcome"] == "failed"
    assert _times([slo], "slo") == _times(rows, "phase_completion", outcome="failed")
    assert [r["alert"] for r in rows if r["kind"] == "alert" and r["at"] == slo["at"]][-1] == "slo_violation"
    assert rows.index(slo) == len(rows) - 1  # nothing after the date ended


def test_an_overnight_day_that_cascades_ends_with_a_met_slo_row_and_no_watch_alert() -> None:
    rows = replayed(OVERNIGHT_FULL_CASCADE)
    first_input, last_trigger = min(_times(rows, "input")), max(_times(rows, "trigger"))

    [slo] = [r for r in rows if r["kind"] == "slo"]

    assert slo["outcome"] == "complete"
    assert slo["end_to_end_s"] == (last_trigger - first_input).total_seconds()
    assert all(r["met"] for r in slo["results"])
    assert [r for r in rows if r["kind"] == "alert"] == []


def test_an_overnight_day_waiting_on_a_critical_input_is_never_reported_stuck() -> None:
    rows = replayed(CRITICAL_NEVER_REPORTS)

    alerts = [r["alert"] for r in rows if r["kind"] == "alert"]

    assert "pipeline_stuck" not in alerts
    assert alerts.count("slo_at_risk") == 1 and alerts.count("slo_violation") == 1


def test_a_date_the_watch_never_assesses_is_never_due() -> None:
    """`assess` ignores dates of modes that never cascade, so their stuck check must never come due: the
    engine's `next_due` would return the same past instant forever (`cascade replay` never ends)."""
    policy = policy_with_slo(stuck_modes=["same_day", "backfill"])
    pulse, flags = pulse_of(opened(PHASE2, Mode.BACKFILL, at("2026-01-15T14:00"))), WatchFlags()
    now = at("2026-01-15T16:30")

    assert assess(pulse, flags, policy, DurationBook.for_policy(policy), now) == Verdict()
    due = next_due(pulse, flags, policy, DurationBook.for_policy(policy), now)
    assert due is None or due > now


def test_a_restarted_watch_does_not_raise_again_what_the_history_already_holds() -> None:
    phase2_only = [
        line for line in recording_lines(SAME_DAY_UPCOMING_ONLY) if "phase2-raw" in json.loads(line)["topic"]
    ]
    rows = replayed_lines(phase2_only)
    [raised_at] = _times(rows, "alert", alert="slo_at_risk")
    before_restart = [r for r in rows if _instant(r) <= raised_at]
    watch = DayWatch(NBA)

    watch.seed(before_restart)
    after = watch.sweep(raised_at + timedelta(minutes=1), NBA)

    assert [a.effect.alert for v in after for a in v.alerts] == []


def test_the_watch_is_due_the_second_the_eta_passes_the_slo_deadline_while_time_moves_on() -> None:
    """Same-day, phase 2 open since 14:00, nothing new: ETA = max(now, 14:00 + 30 min) + 3 x 30 min; it passes
    the 16:00 deadline just after 14:30, which is when the watch must look again (not at the next row)."""
    rows = [input_row(at("2026-01-15T14:00"), PHASE2, "odds_game_lines")]
    rows.append(decision_row(at("2026-01-15T14:00"), PHASE2, SD))
    pulse, flags, book = pulse_of(rows), WatchFlags(), DurationBook.for_policy(POLICY)

    due = next_due(pulse, flags, POLICY, book, at("2026-01-15T14:05"))
    assert due == at("2026-01-15T14:30") + timedelta(seconds=1)
    assert not [a for a in assess(pulse, flags, POLICY, book, due - timedelta(seconds=2)).alerts]
    assert [a.effect.alert for a in assess(pulse, flags, POLICY, book, due).alerts] == ["slo_at_risk"]
    assert next_due(pulse, flags, POLICY, book, due) != due  # raised once: not due for it again


def _state_triggered_elsewhere(transition: str, published_at: datetime, last_input_at: datetime) -> DateState:
    """This instance's router state of a key another instance triggered (merged from the shared record)."""
    key = Key(GAME_DATE, transition)
    published = Published(key.trigger_id, Source.CASCADE, False, published_at)
    return DateState(
        key, SD, at("2026-01-15T14:00"), Phase.TRIGGERED, published=published, last_input_at=last_input_at
    )


def test_a_date_another_instance_moved_on_is_neither_stuck_nor_reported_twice_by_this_one() -> None:
    """During a rollout two instances share the work: this one wrote phase 2's first input and nothing more,
    the other received the rest and published every trigger. This watch must learn that from its router
    state: no pipeline_stuck, no slo_at_risk, and no second slo row for the date (the other one writes it)."""
    policy = view_rows.POLICY
    states: list[DateState] = []
    watch_ = DayWatch(policy, states_of=lambda day: states if day == GAME_DATE else [])
    own = [
        input_row(at("2026-01-15T14:00"), PHASE2, "odds_game_lines"),
        decision_row(at("2026-01-15T14:00"), PHASE2, SD),
    ]
    assert watch_.observe(own, at("2026-01-15T14:00"), policy) == []

    for i, transition in enumerate(CHAIN):
        done = at("2026-01-15T14:00") + timedelta(minutes=20 * (i + 1))
        states.append(_state_triggered_elsewhere(transition, done, done - timedelta(minutes=1)))
    later = [watch_.sweep(at(f"2026-01-15T{hh}:00"), policy) for hh in ("15", "16", "17", "19")]

    assert later == [[]] * 4
    assert watch_.flags[GAME_DATE].ended and not watch_.slo_rows
    assert watch_.next_due(policy) is None


def test_without_the_router_state_the_same_watch_would_call_that_date_stuck() -> None:
    """The counterpart: the rows alone (what replay has, one writer) say nothing happened since 14:00."""
    policy = view_rows.POLICY
    watch_ = DayWatch(policy)
    watch_.observe(
        [
            input_row(at("2026-01-15T14:00"), PHASE2, "odds_game_lines"),
            decision_row(at("2026-01-15T14:00"), PHASE2, SD),
        ],
        at("2026-01-15T14:00"),
        policy,
    )
    raised = [a.effect.alert for v in watch_.sweep(at("2026-01-15T16:01"), policy) for a in v.alerts]
    assert "pipeline_stuck" in raised
