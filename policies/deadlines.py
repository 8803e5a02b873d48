"""Fallback and self-heal deadlines for a (game_date, transition) in its pinned mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from policies.clock_math import local_instant
from policies.model import LocalTime, ModeSpec, TransitionSpec


@dataclass(frozen=True, slots=True)
class Deadlines:
    fallback_at: datetime | None
    self_heal_at: datetime | None


def deadlines_for(game_date: date, mode: ModeSpec, transition: TransitionSpec, tz: str) -> Deadlines:
    shift = timedelta(seconds=transition.deadline_offset_s)
    return Deadlines(
        fallback_at=_instant(game_date, mode.fallback, tz, shift),
        self_heal_at=_instant(game_date, mode.self_heal, tz, shift),
    )


@lru_cache(maxsize=4096)
def _instant(game_date: date, when: LocalTime | None, tz: str, shift: timedelta) -> datetime | None:
    # Asked on every step of every key (to schedule its timer); the zoneinfo arithmetic is worth caching.
    if when is None:
        return None
    return local_instant(game_date, when.day_offset, when.at, tz) + shift
