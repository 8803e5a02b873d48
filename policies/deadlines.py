"""Fallback and self-heal deadlines for a (game_date, transition) in its pinned mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from policies.clock_math import local_instant
from policies.model import ModeSpec, TransitionSpec


@dataclass(frozen=True, slots=True)
class Deadlines:
    fallback_at: datetime | None
    self_heal_at: datetime | None


def deadlines_for(game_date: date, mode: ModeSpec, transition: TransitionSpec, tz: str) -> Deadlines:
    # Asked on every step of every key (to schedule its timer). Remembered by the plain values that decide
    # it: hashing the pydantic LocalTime models themselves costs more than the zoneinfo arithmetic saved.
    fallback, self_heal = mode.fallback, mode.self_heal
    return _deadlines(
        game_date,
        fallback.day_offset if fallback else None,
        fallback.at if fallback else None,
        self_heal.day_offset if self_heal else None,
        self_heal.at if self_heal else None,
        tz,
        transition.deadline_offset_s,
    )


@lru_cache(maxsize=4096)
def _deadlines(
    game_date: date,
    fallback_day_offset: int | None,
    fallback_at: str | None,
    self_heal_day_offset: int | None,
    self_heal_at: str | None,
    tz: str,
    deadline_offset_s: int,
) -> Deadlines:
    shift = timedelta(seconds=deadline_offset_s)
    return Deadlines(
        fallback_at=_instant(game_date, fallback_day_offset, fallback_at, tz, shift),
        self_heal_at=_instant(game_date, self_heal_day_offset, self_heal_at, tz, shift),
    )


def _instant(
    game_date: date, day_offset: int | None, at: str | None, tz: str, shift: timedelta
) -> datetime | None:
    if day_offset is None or at is None:
        return None
    return local_instant(game_date, day_offset, at, tz) + shift
