"""Pure calendar arithmetic in the policy's timezone (DST-safe via zoneinfo, no wall clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def require_aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware UTC datetime")
    return now


def local_date_and_minutes(now: datetime, tz: str) -> tuple[date, int]:
    local = require_aware(now).astimezone(zone(tz))
    return local.date(), local.hour * 60 + local.minute


def local_instant(day: date, day_offset: int, hhmm: str, tz: str) -> datetime:
    """The UTC instant of wall-clock `hhmm` on `day + day_offset` in `tz`.

    A wall time inside a spring-forward gap resolves forward (fold=0 semantics of zoneinfo), one inside the
    fall-back repeat resolves to its first occurrence: a deadline never fires twice.
    """
    hours, minutes = (int(part) for part in hhmm.split(":"))
    wall = datetime.combine(day + timedelta(days=day_offset), time(hours, minutes), tzinfo=zone(tz))
    return wall.astimezone(UTC)


def parse_hhmm_minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)
