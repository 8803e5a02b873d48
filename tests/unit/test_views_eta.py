"""When a date's export should go out: recent median durations per (mode, transition), the policy default
where there is no history, chained along the pipeline, never before now."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.model import Mode
from tests.support.view_rows import (
    CHAIN,
    GAME_DATE,
    PHASE2,
    PHASE3,
    PHASE4,
    PHASE5,
    Row,
    completed,
    decision_row,
    failed,
    opened,
    phase_row,
    policy_with_slo,
    pulse_of,
)
from views.eta import DurationBook, estimate, slo_deadline

# Every number the expected instants below follow from is set here, not read from the policy file.
POLICY = policy_with_slo(default_transition_s=1800, eta_history_days=14)
SD = Mode.SAME_DAY
D = GAME_DATE  # 2026-01-15


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def history(*durations: tuple[int, Mode, str, int]) -> list[Row]:
    """Phase-completion rows of earlier dates: (days before D, mode, transition, seconds)."""
    rows = []
    for days_before, mode, transition, seconds in durations:
        day = D - timedelta(days=days_before)
        opened_at = datetime(day.year, day.month, day.day, 14, tzinfo=UTC)
        rows.append(phase_row(transition, mode, opened_at, opened_at + timedelta(seconds=seconds), day))
    return rows


def book(rows: Iterable[Row] = ()) -> DurationBook:
    return DurationBook.for_policy(POLICY, rows)


# --- the typical duration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Typical:
    name: str
    rows: list[Row]
    expected: tuple[float, bool]
    mode: Mode | None = SD


TYPICAL = [
    Typical("no history: the policy default", [], (1800.0, False)),
    Typical(
        "median of the recent dates",
        history((1, SD, PHASE2, 600), (2, SD, PHASE2, 3000), (3, SD, PHASE2, 1200)),
        (1200.0, True),
    ),
    Typical("median of an even count", history((1, SD, PHASE2, 600), (2, SD, PHASE2, 1200)), (900.0, True)),
    Typical("the oldest date of the window counts", history((14, SD, PHASE2, 60)), (60.0, True)),
    Typical("a date older than the window does not", history((15, SD, PHASE2, 60)), (1800.0, False)),
    Typical("the date itself does not", history((0, SD, PHASE2, 60)), (1800.0, False)),
    Typical("a later date does not", history((-1, SD, PHASE2, 60)), (1800.0, False)),
    Typical("another mode does not", history((1, Mode.OVERNIGHT, PHASE2, 60)), (1800.0, False)),
    Typical("another transition does not", history((1, SD, PHASE3, 60)), (1800.0, False)),
    Typical("a date with no mode yet: the default", history((1, SD, PHASE2, 60)), (1800.0, False), mode=None),
    Typical(
        "a failed transition is no duration",
        [
            phase_row(
                PHASE2,
                SD,
                at("2026-01-14T14:00"),
                at("2026-01-14T14:01"),
                date(2026, 1, 14),
                outcome="failed",
            )
        ],
        (1800.0, False),
    ),
    Typical(
        "a degraded trigger is one",
        [
            phase_row(
                PHASE2,
                SD,
                at("2026-01-14T14:00"),
                at("2026-01-14T14:01"),
                date(2026, 1, 14),
                outcome="triggered_degraded",
            )
        ],
        (60.0, True),
    ),
]


@pytest.mark.parametrize("case", TYPICAL, ids=[c.name for c in TYPICAL])
def test_the_typical_duration_is_the_median_of_the_same_modes_recent_dates(case: Typical) -> None:
    assert book(case.rows).typical(case.mode, PHASE2, D) == case.expected


def test_forgetting_drops_only_the_dates_before_the_horizon() -> None:
    durations = book(history((1, SD, PHASE2, 600), (10, SD, PHASE2, 60)))

    durations.forget(D - timedelta(days=5))

    assert durations.typical(SD, PHASE2, D) == (600.0, True)


# --- the ETA ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    rows: Callable[[], list[Row]]
    now: datetime
    at: datetime | None
    done: bool = False
    basis: str = ""
    history: tuple[tuple[int, Mode, str, int], ...] = ()


def triggered_3() -> list[Row]:
    """Phases 2, 3 and 4 triggered, 20 minutes each, the last at 15:00."""
    return [
        *completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")),
        *completed(PHASE3, SD, at("2026-01-15T14:20"), at("2026-01-15T14:40")),
        *completed(PHASE4, SD, at("2026-01-15T14:40"), at("2026-01-15T15:00")),
    ]


CASES = [
    Case(
        "phase 2 just opened, no history: a policy default per transition",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:10"),
        at=at("2026-01-15T16:00"),
        basis="policy default durations (no history yet)",
    ),
    Case(
        "phase 2 overdue: the rest counted from now, never before it",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:45"),
        at=at("2026-01-15T16:15"),
    ),
    Case(
        "phase 2 triggered, phase 3 not open: the rest counted from the trigger",
        lambda: completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")),
        now=at("2026-01-15T14:25"),
        at=at("2026-01-15T15:50"),
    ),
    Case(
        "three triggered, the export open",
        lambda: [*triggered_3(), *opened(PHASE5, SD, at("2026-01-15T15:00"))],
        now=at("2026-01-15T15:05"),
        at=at("2026-01-15T15:30"),
    ),
    Case(
        "three triggered, the export overdue: now",
        lambda: [*triggered_3(), *opened(PHASE5, SD, at("2026-01-15T15:00"))],
        now=at("2026-01-15T17:00"),
        at=at("2026-01-15T17:00"),
    ),
    Case(
        "no row yet: every transition from now",
        lambda: [],
        now=at("2026-01-15T13:00"),
        at=at("2026-01-15T15:00"),
    ),
    Case(
        "history for every transition: the medians",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:01"),
        at=at("2026-01-15T14:50"),  # 14:00 + 10 + 20 + 5 + 15 min
        basis="median durations of recent days",
        history=(
            (1, SD, PHASE2, 600),
            (1, SD, PHASE3, 1200),
            (1, SD, PHASE4, 300),
            (1, SD, PHASE5, 900),
        ),
    ),
    Case(
        "history for phase 2 only: its median, defaults after it",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:01"),
        at=at("2026-01-15T15:40"),  # 14:00 + 10 min + 3 x 30 min
        basis="recent medians, policy defaults where there is no history",
        history=((1, SD, PHASE2, 600),),
    ),
    Case(
        "history of another mode is not used",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:01"),
        at=at("2026-01-15T16:00"),
        basis="policy default durations (no history yet)",
        history=((1, Mode.OVERNIGHT, PHASE2, 600), (1, Mode.TOMORROW, PHASE3, 600)),
    ),
    Case(
        "history of the date itself and of later dates is not used",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:01"),
        at=at("2026-01-15T16:00"),
        history=((0, SD, PHASE2, 600), (-2, SD, PHASE3, 600)),
    ),
    Case(
        "history older than eta_history_days is not used",
        lambda: opened(PHASE2, SD, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:01"),
        at=at("2026-01-15T16:00"),
        history=((15, SD, PHASE2, 600), (30, SD, PHASE3, 600)),
    ),
    Case(
        "done once the last transition triggered, whatever now",
        lambda: [*triggered_3(), *completed(PHASE5, SD, at("2026-01-15T15:00"), at("2026-01-15T15:40"))],
        now=at("2026-01-15T23:00"),
        at=at("2026-01-15T15:40"),
        done=True,
    ),
    Case(
        "a failed transition: no estimate",
        lambda: [
            *completed(PHASE2, SD, at("2026-01-15T14:00"), at("2026-01-15T14:20")),
            *failed(PHASE3, SD, at("2026-01-15T14:20"), at("2026-01-15T18:30")),
        ],
        now=at("2026-01-15T18:31"),
        at=None,
    ),
    Case(
        "a mode that never cascades: no estimate",
        lambda: opened(PHASE2, Mode.BACKFILL, at("2026-01-15T14:00")),
        now=at("2026-01-15T14:10"),
        at=None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_eta_chains_typical_durations_from_where_the_date_is(case: Case) -> None:
    eta = estimate(pulse_of(case.rows()), POLICY, book(history(*case.history)), case.now)

    assert (eta.at, eta.done) == (case.at, case.done)
    if case.basis:
        assert eta.basis == case.basis


def test_an_open_transition_counts_from_the_trigger_that_opened_it_like_its_recorded_durations() -> None:
    """Phase 3 opens when phase 2 triggers (that is where `phase_completion.opened_at` starts); its first
    re-check comes `recheck_every_s` later and must not push the ETA back by that much."""
    rows = [
        *completed(PHASE2, SD, at("2026-01-15T13:50"), at("2026-01-15T14:00")),
        decision_row(at("2026-01-15T14:05"), PHASE3, SD, completeness=0.0, cause="timer"),
    ]

    eta = estimate(pulse_of(rows), POLICY, book(), at("2026-01-15T14:06"))

    assert eta.at == at("2026-01-15T15:30")  # 14:00 + 3 x 30 min


@pytest.mark.parametrize(
    ("mode", "deadline"),
    [
        (Mode.SAME_DAY, at("2026-01-15T16:00")),
        (Mode.OVERNIGHT, at("2026-01-15T22:00")),
        (Mode.TOMORROW, at("2026-01-15T18:00")),
        (Mode.MANUAL, None),
    ],
)
def test_the_slo_deadline_is_the_first_input_plus_the_modes_objective(
    mode: Mode, deadline: datetime | None
) -> None:
    rows = [*opened(PHASE2, mode, at("2026-01-15T14:00")), *opened(PHASE3, mode, at("2026-01-15T14:30"))]

    assert slo_deadline(pulse_of(rows), POLICY) == deadline


def test_a_date_with_no_mode_has_no_slo_deadline() -> None:
    assert slo_deadline(pulse_of([]), POLICY) is None


# --- invariants ---------------------------------------------------------------------------------------------

MODES = st.sampled_from([Mode.OVERNIGHT, Mode.SAME_DAY, Mode.TOMORROW, Mode.MANUAL])
MINUTES = st.integers(min_value=0, max_value=600)


@settings(max_examples=200, deadline=None)
@given(
    mode=MODES,
    triggered=st.integers(min_value=0, max_value=len(CHAIN)),
    steps=st.lists(st.integers(min_value=1, max_value=240), min_size=len(CHAIN), max_size=len(CHAIN)),
    next_open=st.booleans(),
    now_after=MINUTES,
    past=st.lists(st.tuples(st.integers(1, 20), st.sampled_from(CHAIN), st.integers(0, 7200)), max_size=12),
)
def test_the_eta_is_never_before_now_and_done_exactly_when_the_export_triggered(
    mode: Mode,
    triggered: int,
    steps: list[int],
    next_open: bool,
    now_after: int,
    past: list[tuple[int, str, int]],
) -> None:
    rows: list[Row] = []
    cursor = at("2026-01-15T14:00")
    for transition, minutes in zip(CHAIN[:triggered], steps, strict=False):
        rows += completed(transition, mode, cursor, cursor + timedelta(minutes=minutes))
        cursor += timedelta(minutes=minutes)
    if next_open and triggered < len(CHAIN):
        rows += opened(CHAIN[triggered], mode, cursor + timedelta(minutes=1))
    now = cursor + timedelta(minutes=now_after)
    durations = book(history(*[(days, mode, t, s) for days, t, s in past]))

    eta = estimate(pulse_of(rows), POLICY, durations, now)

    assert eta.done == (triggered == len(CHAIN))
    if eta.done:
        assert eta.at == cursor  # the export's trigger
    else:
        assert eta.at is not None and eta.at >= now
