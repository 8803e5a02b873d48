"""Mode detection: which thresholds apply to a (game_date, transition).

Pure: `now` comes in as an argument. The caller pins the result at the first event and never recomputes it
(the old system recomputed after midnight and turned a same-day run into an overnight one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from policies.clock_math import local_date_and_minutes, parse_hhmm_minutes, require_aware
from policies.model import Mode


@dataclass(frozen=True, slots=True)
class ModeHints:
    """The message fields that can decide the mode before the calendar does."""

    processing_mode: str | None = None
    backfill_mode: bool = False
    skip_downstream_trigger: bool = False
    trigger_source: str | None = None


def explicit_mode(hints: ModeHints) -> Mode | None:
    """The mode the message states outright, if any. An unknown value is not a mode (validated upstream)."""
    if hints.processing_mode:
        return Mode(hints.processing_mode)
    return None


def hinted_mode(hints: ModeHints) -> Mode | None:
    """The mode the message's own fields decide (stated, backfill flags, a manual trigger), if any."""
    stated = explicit_mode(hints)
    if stated is not None:
        return stated
    if hints.backfill_mode or hints.skip_downstream_trigger:
        return Mode.BACKFILL
    if (hints.trigger_source or "").lower() == "manual":
        return Mode.MANUAL
    return None


def detect_mode(game_date: date, now: datetime, hints: ModeHints, tz: str, overnight_cutover: str) -> Mode:
    require_aware(now)
    return hinted_mode(hints) or calendar_mode(game_date, now, tz, overnight_cutover)


def calendar_mode(game_date: date, now: datetime, tz: str, overnight_cutover: str) -> Mode:
    today, minutes = local_date_and_minutes(now, tz)
    days_after = (today - game_date).days
    if days_after == 0:
        return Mode.OVERNIGHT if minutes >= parse_hhmm_minutes(overnight_cutover) else Mode.SAME_DAY
    if days_after == 1:
        return Mode.OVERNIGHT
    if days_after == -1:
        return Mode.TOMORROW
    if days_after >= 2:
        return Mode.BACKFILL
    # More than a day ahead is not in the design's table: it is a run preparing a future slate, like tomorrow.
    return Mode.TOMORROW
