"""The game-day calendar: which dates must see a run, when a silent one is opened, and when a silence is
long enough to alert.

Pure: every instant comes in as an argument. A date with no message at all is never opened by a message, so
without this nothing would ever fire for it; the shell opens the first transition's key of every expected
game day at `opens_at` (see `CalendarSpec.open_at`), and from there its deadlines run like any other key's.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from policies.clock_math import local_date_and_minutes, local_instant
from policies.model import CalendarSpec, Policy

ONE_DAY = timedelta(days=1)


def is_game_day(calendar: CalendarSpec, day: date) -> bool:
    in_season = any(span.holds(day) for span in calendar.game_days.values())
    return in_season and not any(span.holds(day) for span in calendar.off_days.values())


def expected_game_days(calendar: CalendarSpec, first: date, last: date) -> list[date]:
    """The game days from `first` to `last` (both included), in order; empty when `last < first`."""
    days = []
    for span in calendar.game_days.values():  # in season order, disjoint: the result is sorted
        day, end = max(span.first, first), min(span.last, last)
        while day <= end:
            if is_game_day(calendar, day):
                days.append(day)
            day += ONE_DAY
    return days


def opens_at(calendar: CalendarSpec, game_date: date, tz: str) -> datetime:
    """The instant an expected game day that has no key yet is opened (UTC)."""
    return local_instant(game_date, calendar.open_at.day_offset, calendar.open_at.at, tz)


def first_transitions(policy: Policy) -> tuple[str, ...]:
    """The transitions no other one opens (`next`): where a day's run starts, so what the calendar opens."""
    opened = {spec.next for spec in policy.transitions.values() if spec.next is not None}
    return tuple(name for name in policy.transitions if name not in opened)


def silence_alert_at(
    calendar: CalendarSpec, heard_at: datetime, after_s: int, tz: str, last: date | None = None
) -> datetime | None:
    """When a silence that began at `heard_at` (the last completion message) has lasted `after_s` seconds
    counting only the hours of game days (up to `last`, if given); None if it never does this season.

    Off days and the off-season do not count: the pipeline is quiet on them by design (an All-Star break
    is six days without a message), and the next game day starts the count from its local midnight."""
    remaining = timedelta(seconds=after_s)
    day = max(local_date_and_minutes(heard_at, tz)[0], calendar.season_first)
    end = calendar.season_last if last is None else min(last, calendar.season_last)
    while day <= end:
        if is_game_day(calendar, day):
            start = max(heard_at, local_instant(day, 0, "00:00", tz))
            counted = local_instant(day, 1, "00:00", tz) - start
            if counted >= remaining:
                return start + remaining
            remaining -= counted
        day += ONE_DAY
    return None
