"""Mode detection: explicit hints first, then the calendar in America/New_York with a 23:00 cut-over.

Every instant is an explicit aware UTC datetime; the comment on each case gives the local wall time, so a DST
mistake (treating EDT as EST or the reverse) moves a case across a boundary and fails it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from policies.model import Mode
from policies.modes import ModeHints, calendar_mode, detect_mode

TZ = "America/New_York"
CUTOVER = "23:00"


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


CALENDAR_CASES = [
    # -- an ordinary winter night (EST, UTC-5), game date 2025-12-30 ---------------------------------------
    pytest.param(date(2025, 12, 30), _utc(2025, 12, 31, 15, 0), Mode.OVERNIGHT, id="yesterday-is-overnight"),
    pytest.param(date(2025, 12, 30), _utc(2025, 12, 30, 15, 0), Mode.SAME_DAY, id="today-10:00-is-same-day"),
    pytest.param(date(2025, 12, 30), _utc(2025, 12, 31, 3, 59), Mode.SAME_DAY, id="today-22:59-is-same-day"),
    pytest.param(
        date(2025, 12, 30), _utc(2025, 12, 31, 3, 59, 59), Mode.SAME_DAY, id="today-22:59:59-is-same-day"
    ),
    pytest.param(date(2025, 12, 30), _utc(2025, 12, 31, 4, 0), Mode.OVERNIGHT, id="today-23:00-is-overnight"),
    pytest.param(date(2025, 12, 30), _utc(2025, 12, 29, 15, 0), Mode.TOMORROW, id="today-plus-1-is-tomorrow"),
    pytest.param(date(2025, 12, 30), _utc(2026, 1, 1, 15, 0), Mode.BACKFILL, id="today-minus-2-is-backfill"),
    pytest.param(date(2025, 12, 30), _utc(2026, 2, 15, 15, 0), Mode.BACKFILL, id="weeks-old-is-backfill"),
    # Beyond the design's table: a slate several days ahead is prepared like tomorrow's.
    pytest.param(date(2025, 12, 30), _utc(2025, 12, 27, 15, 0), Mode.TOMORROW, id="today-plus-3-is-tomorrow"),
    # -- local midnight (05:00Z in winter) changes "today" -----------------------------------------------
    pytest.param(
        date(2025, 12, 31), _utc(2025, 12, 31, 4, 59, 59), Mode.TOMORROW, id="23:59:59-before-game-day"
    ),
    pytest.param(date(2025, 12, 31), _utc(2025, 12, 31, 5, 0, 0), Mode.SAME_DAY, id="00:00:00-on-game-day"),
    pytest.param(
        date(2025, 12, 29), _utc(2025, 12, 31, 4, 59, 59), Mode.OVERNIGHT, id="23:59:59-day-after-game"
    ),
    pytest.param(
        date(2025, 12, 29), _utc(2025, 12, 31, 5, 0, 0), Mode.BACKFILL, id="00:00:00-two-days-after"
    ),
    # -- spring forward: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) --------------------------------------
    # 04:30Z is 23:30 EST on the 7th, 05:30Z is 00:30 EST on the 8th (midnight is still EST).
    pytest.param(date(2026, 3, 8), _utc(2026, 3, 8, 4, 30), Mode.TOMORROW, id="spring-04:30Z-is-eve"),
    pytest.param(date(2026, 3, 8), _utc(2026, 3, 8, 5, 30), Mode.SAME_DAY, id="spring-05:30Z-is-game-day"),
    pytest.param(date(2026, 3, 8), _utc(2026, 3, 8, 6, 59), Mode.SAME_DAY, id="spring-01:59-EST"),
    pytest.param(date(2026, 3, 8), _utc(2026, 3, 8, 7, 0), Mode.SAME_DAY, id="spring-03:00-EDT-same-date"),
    # The cut-over on the spring-forward day is 23:00 EDT = 03:00Z on the 9th (not 04:00Z as in EST).
    pytest.param(date(2026, 3, 8), _utc(2026, 3, 9, 2, 59), Mode.SAME_DAY, id="spring-22:59-EDT"),
    pytest.param(date(2026, 3, 8), _utc(2026, 3, 9, 3, 0), Mode.OVERNIGHT, id="spring-23:00-EDT-is-03:00Z"),
    # The next local midnight is 00:00 EDT = 04:00Z.
    pytest.param(date(2026, 3, 9), _utc(2026, 3, 9, 3, 59, 59), Mode.TOMORROW, id="spring-23:59:59-EDT"),
    pytest.param(date(2026, 3, 9), _utc(2026, 3, 9, 4, 0), Mode.SAME_DAY, id="spring-midnight-EDT-is-04:00Z"),
    # -- fall back: 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) -------------------------------------------
    # Midnight starting the 1st is still EDT: 04:00Z.
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 1, 3, 59, 59), Mode.TOMORROW, id="fall-23:59:59-EDT-eve"),
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 1, 4, 0), Mode.SAME_DAY, id="fall-midnight-EDT-is-04:00Z"),
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 1, 4, 30), Mode.SAME_DAY, id="fall-04:30Z-00:30-EDT"),
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 1, 5, 30), Mode.SAME_DAY, id="fall-05:30Z-first-01:30"),
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 1, 6, 30), Mode.SAME_DAY, id="fall-06:30Z-second-01:30"),
    # The cut-over on the fall-back day is 23:00 EST = 04:00Z on the 2nd (03:00Z is only 22:00 EST).
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 2, 3, 0), Mode.SAME_DAY, id="fall-03:00Z-is-22:00-EST"),
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 2, 3, 59), Mode.SAME_DAY, id="fall-22:59-EST"),
    pytest.param(date(2026, 11, 1), _utc(2026, 11, 2, 4, 0), Mode.OVERNIGHT, id="fall-23:00-EST-is-04:00Z"),
    # The next local midnight is 00:00 EST = 05:00Z.
    pytest.param(date(2026, 11, 2), _utc(2026, 11, 2, 4, 59, 59), Mode.TOMORROW, id="fall-23:59:59-EST"),
    pytest.param(date(2026, 11, 2), _utc(2026, 11, 2, 5, 0), Mode.SAME_DAY, id="fall-midnight-EST-is-05:00Z"),
]


@pytest.mark.parametrize(("game_date", "now", "expected"), CALENDAR_CASES)
def test_calendar_mode_follows_the_new_york_calendar_and_cutover(
    game_date: date, now: datetime, expected: Mode
) -> None:
    assert calendar_mode(game_date, now, TZ, CUTOVER) is expected


@pytest.mark.parametrize(("game_date", "now", "expected"), CALENDAR_CASES)
def test_detect_mode_without_hints_is_the_calendar_mode(
    game_date: date, now: datetime, expected: Mode
) -> None:
    assert detect_mode(game_date, now, ModeHints(), TZ, CUTOVER) is expected


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(datetime(2025, 12, 30, 23, 0, tzinfo=timezone(timedelta(hours=-5))), id="utc-minus-5"),
        pytest.param(datetime(2025, 12, 31, 5, 0, tzinfo=timezone(timedelta(hours=1))), id="utc-plus-1"),
    ],
)
def test_calendar_mode_depends_on_the_instant_not_the_offset_it_is_written_in(now: datetime) -> None:
    # Both are 04:00Z = 23:00 EST on the game date: the cut-over.
    assert calendar_mode(date(2025, 12, 30), now, TZ, CUTOVER) is Mode.OVERNIGHT


GAME = date(2025, 12, 30)
SAME_DAY_NOW = _utc(2025, 12, 30, 15, 0)  # 10:00 EST on the game date: the calendar says same_day
BACKFILL_NOW = _utc(2026, 1, 10, 15, 0)  # long after: the calendar says backfill


@pytest.mark.parametrize(
    ("hints", "now", "expected"),
    [
        pytest.param(
            ModeHints(
                processing_mode="overnight",
                backfill_mode=True,
                skip_downstream_trigger=True,
                trigger_source="manual",
            ),
            SAME_DAY_NOW,
            Mode.OVERNIGHT,
            id="processing-mode-beats-backfill-flags-manual-and-calendar",
        ),
        pytest.param(
            ModeHints(processing_mode="same_day"),
            BACKFILL_NOW,
            Mode.SAME_DAY,
            id="processing-mode-beats-calendar",
        ),
        pytest.param(
            ModeHints(processing_mode="manual", backfill_mode=True),
            SAME_DAY_NOW,
            Mode.MANUAL,
            id="processing-mode-manual-beats-backfill-flag",
        ),
        pytest.param(
            ModeHints(backfill_mode=True, trigger_source="manual"),
            SAME_DAY_NOW,
            Mode.BACKFILL,
            id="backfill-flag-beats-manual-and-calendar",
        ),
        pytest.param(
            ModeHints(skip_downstream_trigger=True),
            SAME_DAY_NOW,
            Mode.BACKFILL,
            id="skip-downstream-trigger-is-backfill",
        ),
        pytest.param(ModeHints(trigger_source="manual"), SAME_DAY_NOW, Mode.MANUAL, id="manual-lowercase"),
        pytest.param(ModeHints(trigger_source="MANUAL"), SAME_DAY_NOW, Mode.MANUAL, id="manual-uppercase"),
        pytest.param(
            ModeHints(trigger_source="Manual"), BACKFILL_NOW, Mode.MANUAL, id="manual-beats-calendar"
        ),
        pytest.param(
            ModeHints(trigger_source="scheduler"),
            SAME_DAY_NOW,
            Mode.SAME_DAY,
            id="other-source-uses-calendar",
        ),
        pytest.param(ModeHints(), BACKFILL_NOW, Mode.BACKFILL, id="no-hints-uses-calendar"),
    ],
)
def test_detect_mode_applies_hints_in_priority_order(hints: ModeHints, now: datetime, expected: Mode) -> None:
    assert detect_mode(GAME, now, hints, TZ, CUTOVER) is expected


def test_calendar_mode_rejects_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        calendar_mode(GAME, datetime(2025, 12, 30, 23, 0), TZ, CUTOVER)  # noqa: DTZ001


def test_detect_mode_rejects_a_naive_datetime_when_the_calendar_decides() -> None:
    with pytest.raises(ValueError, match="naive"):
        detect_mode(GAME, datetime(2025, 12, 30, 23, 0), ModeHints(), TZ, CUTOVER)  # noqa: DTZ001


def test_detect_mode_rejects_an_unknown_processing_mode_instead_of_guessing() -> None:
    with pytest.raises(ValueError):
        detect_mode(GAME, SAME_DAY_NOW, ModeHints(processing_mode="nightly"), TZ, CUTOVER)
