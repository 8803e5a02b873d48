"""Circuit breaker, fallback/self-heal deadlines, and alert rate limiting: pure time logic on fixed instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from policies.alert_limit import AlertWindow, Summary, admit, flush, next_flush_at
from policies.breaker import Breaker, BreakerState, advance, newer, record_failure, record_success
from policies.deadlines import Deadlines, deadlines_for
from policies.model import AlertLimitSpec, BreakerSpec, LocalTime, Mode, ModeSpec, Policy

T0 = datetime(2025, 12, 31, 8, 0, tzinfo=UTC)
BREAKER = BreakerSpec(failure_threshold=5, cooldown_s=1800)
COOLDOWN = timedelta(seconds=1800)


def _fail(breaker: Breaker, times: int, start: datetime = T0) -> tuple[Breaker, list[bool]]:
    """`times` failures one minute apart; returns the breaker and each call's `opened` flag."""
    opened: list[bool] = []
    for i in range(times):
        breaker, just_opened = record_failure(breaker, start + timedelta(minutes=i), BREAKER)
        opened.append(just_opened)
    return breaker, opened


# -- breaker -------------------------------------------------------------------------------------------


def test_the_default_policy_breaker_is_five_failures_and_thirty_minutes(policy: Policy) -> None:
    assert policy.breaker == BREAKER


def test_four_failures_keep_the_breaker_closed() -> None:
    breaker, opened = _fail(Breaker(), 4)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 4
    assert opened == [False] * 4


def test_the_fifth_failure_opens_the_breaker_and_reports_it_once() -> None:
    breaker, opened = _fail(Breaker(), 7)

    assert opened == [False, False, False, False, True, False, False]
    assert breaker.state is BreakerState.OPEN
    # Failures while open do not restart the cooldown.
    assert breaker.opened_at == T0 + timedelta(minutes=4)
    assert breaker.reopens_at(BREAKER) == T0 + timedelta(minutes=4) + COOLDOWN


def test_an_open_breaker_stays_open_until_the_cooldown_has_passed() -> None:
    breaker, _ = _fail(Breaker(), 5)
    opened_at = T0 + timedelta(minutes=4)

    assert advance(breaker, opened_at + COOLDOWN - timedelta(seconds=1), BREAKER).state is BreakerState.OPEN
    assert advance(breaker, opened_at + COOLDOWN, BREAKER).state is BreakerState.HALF_OPEN


def test_a_failure_in_half_open_reopens_without_a_second_opened_signal() -> None:
    breaker, _ = _fail(Breaker(), 5)
    trial_at = T0 + timedelta(minutes=4) + COOLDOWN
    half_open = advance(breaker, trial_at, BREAKER)

    reopened, just_opened = record_failure(half_open, trial_at + timedelta(seconds=10), BREAKER)

    assert reopened.state is BreakerState.OPEN
    assert just_opened is False
    # A fresh cooldown from the failed trial.
    assert reopened.reopens_at(BREAKER) == trial_at + timedelta(seconds=10) + COOLDOWN
    assert advance(reopened, trial_at + COOLDOWN, BREAKER).state is BreakerState.OPEN


@pytest.mark.parametrize(
    "failures_before",
    [pytest.param(2, id="closed"), pytest.param(5, id="open"), pytest.param(6, id="after-more-failures")],
)
def test_a_success_closes_the_breaker_and_forgets_failures(failures_before: int) -> None:
    breaker, _ = _fail(Breaker(), failures_before)

    healed_at = T0 + timedelta(hours=3)
    closed = record_success(breaker, healed_at)

    assert closed == Breaker(state=BreakerState.CLOSED, failures=0, opened_at=None, changed_at=healed_at)
    assert closed.reopens_at(BREAKER) is None


def test_a_success_in_half_open_closes_and_the_next_run_of_failures_opens_again() -> None:
    breaker, _ = _fail(Breaker(), 5)
    half_open = advance(breaker, T0 + timedelta(hours=1), BREAKER)

    closed = record_success(half_open, T0 + timedelta(hours=1, minutes=1))
    _, opened = _fail(closed, 5, start=T0 + timedelta(hours=2))

    assert half_open.state is BreakerState.HALF_OPEN
    assert closed.state is BreakerState.CLOSED
    assert opened == [False, False, False, False, True]


# -- deadlines -----------------------------------------------------------------------------------------

TZ = "America/New_York"


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("game_date", "mode", "transition", "expected"),
    [
        pytest.param(
            date(2025, 12, 30),
            Mode.OVERNIGHT,
            "phase2_to_phase3",
            Deadlines(fallback_at=_utc(2025, 12, 31, 11, 0), self_heal_at=_utc(2025, 12, 31, 13, 0)),
            id="overnight-06:00-EST-is-11:00Z",
        ),
        pytest.param(
            date(2025, 12, 30),
            Mode.OVERNIGHT,
            "phase3_to_phase4",
            Deadlines(fallback_at=_utc(2025, 12, 31, 11, 30), self_heal_at=_utc(2025, 12, 31, 13, 30)),
            id="phase3-shifted-by-1800s",
        ),
        pytest.param(
            date(2025, 12, 30),
            Mode.OVERNIGHT,
            "phase5_to_phase6",
            Deadlines(fallback_at=_utc(2025, 12, 31, 12, 30), self_heal_at=_utc(2025, 12, 31, 14, 30)),
            id="phase5-shifted-by-5400s",
        ),
        pytest.param(
            date(2025, 12, 30),
            Mode.SAME_DAY,
            "phase2_to_phase3",
            Deadlines(fallback_at=_utc(2025, 12, 30, 16, 30), self_heal_at=_utc(2025, 12, 30, 18, 0)),
            id="same-day-11:30-EST-on-game-date",
        ),
        pytest.param(
            date(2025, 12, 30),
            Mode.TOMORROW,
            "phase2_to_phase3",
            Deadlines(fallback_at=_utc(2025, 12, 30, 1, 0), self_heal_at=_utc(2025, 12, 30, 3, 0)),
            id="tomorrow-20:00-EST-the-day-before",
        ),
        pytest.param(
            date(2025, 12, 30),
            Mode.MANUAL,
            "phase2_to_phase3",
            Deadlines(fallback_at=None, self_heal_at=None),
            id="manual-has-no-deadlines",
        ),
        pytest.param(
            date(2026, 3, 7),
            Mode.OVERNIGHT,
            "phase2_to_phase3",
            Deadlines(fallback_at=_utc(2026, 3, 8, 10, 0), self_heal_at=_utc(2026, 3, 8, 12, 0)),
            id="spring-forward-06:00-EDT-is-10:00Z",
        ),
        pytest.param(
            date(2026, 10, 31),
            Mode.OVERNIGHT,
            "phase2_to_phase3",
            Deadlines(fallback_at=_utc(2026, 11, 1, 11, 0), self_heal_at=_utc(2026, 11, 1, 13, 0)),
            id="fall-back-06:00-EST-is-11:00Z",
        ),
        pytest.param(
            date(2026, 3, 8),
            Mode.SAME_DAY,
            "phase2_to_phase3",
            Deadlines(fallback_at=_utc(2026, 3, 8, 15, 30), self_heal_at=_utc(2026, 3, 8, 17, 0)),
            id="same-day-on-spring-forward-day-is-EDT",
        ),
    ],
)
def test_deadlines_are_local_wall_times_in_utc(
    policy: Policy, game_date: date, mode: Mode, transition: str, expected: Deadlines
) -> None:
    got = deadlines_for(game_date, policy.modes[mode], policy.transitions[transition], TZ)
    assert got == expected


def _mode_with(fallback: str, self_heal: str) -> ModeSpec:
    return ModeSpec(
        completeness=1.0,
        quality=0.95,
        degraded_allowed=False,
        fallback=LocalTime(day_offset=1, at=fallback),
        self_heal=LocalTime(day_offset=1, at=self_heal),
    )


@pytest.mark.parametrize(
    ("game_date", "mode", "expected"),
    [
        # 02:30 does not exist on 2026-03-08: it resolves forward to 03:30 EDT = 07:30Z.
        pytest.param(
            date(2026, 3, 7),
            _mode_with("02:30", "04:00"),
            Deadlines(fallback_at=_utc(2026, 3, 8, 7, 30), self_heal_at=_utc(2026, 3, 8, 8, 0)),
            id="spring-gap-resolves-forward",
        ),
        # 01:30 happens twice on 2026-11-01: the first (EDT, 05:30Z), so the deadline fires once.
        pytest.param(
            date(2026, 10, 31),
            _mode_with("01:30", "02:30"),
            Deadlines(fallback_at=_utc(2026, 11, 1, 5, 30), self_heal_at=_utc(2026, 11, 1, 7, 30)),
            id="fall-repeat-takes-first",
        ),
    ],
)
def test_deadlines_inside_a_dst_change_resolve_to_one_instant(
    policy: Policy, game_date: date, mode: ModeSpec, expected: Deadlines
) -> None:
    assert deadlines_for(game_date, mode, policy.transitions["phase2_to_phase3"], TZ) == expected


# -- alert rate limiting -------------------------------------------------------------------------------

ALERTS = AlertLimitSpec(max_per_window=5, window_s=3600)
WINDOW = timedelta(seconds=3600)
SIGNATURE = "completeness_low/phase2_to_phase3"


def _send(
    count: int,
    signature: str = SIGNATURE,
    windows: dict[str, AlertWindow] | None = None,
    start: datetime = T0,
) -> tuple[list[bool], dict[str, AlertWindow]]:
    """`count` alerts one minute apart; returns which were sent and the resulting windows."""
    state: dict[str, AlertWindow] = dict(windows or {})
    sent: list[bool] = []
    for i in range(count):
        admission = admit(state, signature, start + timedelta(minutes=i), ALERTS)
        sent.append(admission.send)
        state = dict(admission.windows)
    return sent, state


def test_the_default_policy_allows_five_alerts_per_hour(policy: Policy) -> None:
    assert policy.alerts == ALERTS


def test_five_alerts_per_window_are_sent_then_the_rest_are_counted() -> None:
    sent, windows = _send(8)

    assert sent == [True] * 5 + [False] * 3
    assert windows[SIGNATURE] == AlertWindow(started_at=T0, sent=5, suppressed=3)


def test_signatures_are_limited_independently() -> None:
    _, windows = _send(6)
    other = admit(windows, "breaker_open/phase3_to_phase4", T0 + timedelta(minutes=7), ALERTS)

    assert other.send is True
    assert other.windows[SIGNATURE].suppressed == 1


def test_flush_before_the_window_ends_keeps_it_and_summarises_nothing() -> None:
    _, windows = _send(8)

    kept, summaries = flush(windows, T0 + WINDOW - timedelta(seconds=1), ALERTS)

    assert summaries == []
    assert kept == windows


def test_flush_after_the_window_returns_one_summary_with_the_suppressed_count() -> None:
    _, windows = _send(8)

    kept, summaries = flush(windows, T0 + WINDOW, ALERTS)

    assert summaries == [Summary(signature=SIGNATURE, suppressed=3, window_started_at=T0)]
    assert kept == {}


def test_a_closed_window_that_held_nothing_back_is_dropped_silently() -> None:
    _, windows = _send(3)

    kept, summaries = flush(windows, T0 + WINDOW, ALERTS)

    assert (kept, summaries) == ({}, [])


def test_after_a_flush_a_new_window_admits_five_again() -> None:
    _, windows = _send(8)
    kept, _ = flush(windows, T0 + WINDOW, ALERTS)

    sent, after = _send(6, windows=kept, start=T0 + WINDOW)

    assert sent == [True] * 5 + [False]
    assert after[SIGNATURE].started_at == T0 + WINDOW


def test_next_flush_at_is_when_the_earliest_window_with_suppressed_alerts_closes() -> None:
    _, windows = _send(3, signature="quiet")  # nothing held back: no flush needed for it
    _, windows = _send(6, signature="later", windows=windows, start=T0 + timedelta(minutes=20))
    _, windows = _send(7, signature="earlier", windows=windows, start=T0 + timedelta(minutes=10))

    assert next_flush_at(windows, ALERTS) == T0 + timedelta(minutes=10) + WINDOW


def test_next_flush_at_is_none_when_nothing_was_held_back() -> None:
    _, windows = _send(5)

    assert next_flush_at(windows, ALERTS) is None
    assert next_flush_at({}, ALERTS) is None


def test_every_change_of_the_breaker_is_stamped_and_the_newest_shared_one_wins() -> None:
    failed, _ = record_failure(Breaker(), T0, BREAKER)
    assert failed.changed_at == T0
    assert record_success(Breaker(), T0) == Breaker()  # nothing to forget, nothing changes

    older, newest = failed, Breaker(BreakerState.OPEN, 5, T0, changed_at=T0 + timedelta(minutes=1))
    assert newer(older, newest) is newest
    assert newer(newest, older) is newest
    assert newer(older, None) is older
