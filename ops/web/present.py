"""Small, pure presentation helpers for the HTML pages: times in the policy's zone, percentages, and the few
things a page derives from a board (the phase that needs attention, which checks changed the decision)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from policies.clock_math import zone
from views.board import DayBoard, Deadline, PhaseLine, PhaseStatus, zone_label
from views.history import AlertSent, Check, DayHistory

# `views.board.zone_label` shortens these zones and returns any other name unchanged, so inverting it over
# them is exact. (The board carries only the label; if it ever carries the zone name, this goes away.)
_SHORTENED_ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "UTC")

# Phases an operator should look at first, most urgent first.
_NEEDS_EYES = (
    PhaseStatus.FAILED,
    PhaseStatus.BREAKER_OPEN,
    PhaseStatus.WAITING,
    PhaseStatus.IN_PROGRESS,
    PhaseStatus.RECORDING,
)
_DONE = (PhaseStatus.COMPLETE, PhaseStatus.DEGRADED, PhaseStatus.TRIGGERED)
_STATE_TEXT = {"complete": "Complete", "failed": "Failed", "in_progress": "In progress", "pending": "Pending"}
# Phases that need nothing from anyone: shown as one line, their particulars folded.
_QUIET = (PhaseStatus.COMPLETE, PhaseStatus.TRIGGERED, PhaseStatus.PENDING)


def zone_of(label: str) -> str:
    return next((name for name in _SHORTENED_ZONES if zone_label(name) == label), label)


def local_clock(at: datetime, tz: str, seconds: bool = False) -> str:
    """'06:02 AM' (or '06:02:42 AM') in `tz`."""
    return f"{at.astimezone(zone(tz)):%I:%M:%S %p}" if seconds else f"{at.astimezone(zone(tz)):%I:%M %p}"


def local_day(at: datetime, tz: str) -> str:
    """'Wed Feb 4' in `tz`."""
    local = at.astimezone(zone(tz))
    return f"{local:%a %b} {local.day}"


def utc_text(at: datetime) -> str:
    """'2026-02-04 11:00:00Z': the time written in the audit log and the logs."""
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z"


def iso_z(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def score(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def relative(at: datetime, now: datetime) -> str:
    """'in 2 h 05 min' or '35 min ago', for deadlines and ETAs seen from `now`."""
    minutes = round((at - now).total_seconds() / 60)
    span = abs(minutes)
    text = f"{span // 60} h {span % 60:02d} min" if span >= 60 else f"{span} min"
    return f"in {text}" if minutes >= 0 else f"{text} ago"


def focus(board: DayBoard) -> PhaseLine | None:
    """The phase to read first: the most urgent one not done, earliest in the pipeline on a tie."""
    for status in _NEEDS_EYES:
        line = next((p for p in board.phases if p.status == status), None)
        if line is not None:
            return line
    return None


def is_done(line: PhaseLine) -> bool:
    return line.status in _DONE


def is_quiet(line: PhaseLine) -> bool:
    return line.status in _QUIET


def short_label(label: str) -> str:
    """'Phase 2' -> '2' for the compact strip; other labels stay whole."""
    return label.removeprefix("Phase ")


def with_changes(checks: Iterable[Check]) -> Iterator[tuple[Check, str | None]]:
    """Each check with the decision its transition had before, when this check changed it (else None)."""
    previous: dict[str, str] = {}
    for check in checks:
        before = previous.get(check.transition)
        previous[check.transition] = check.decision
        yield check, before if before is not None and before != check.decision else None


def latest_next_step(day: DayHistory) -> AlertSent | None:
    """The newest alert saying what the router does next (the operator's 'what now'), unless a decision came
    after it: then it may be out of date, and the phases' own deadlines say what comes."""
    alert = next((a for a in reversed(day.alerts) if a.next_action), None)
    if alert is None or (day.checks and day.checks[-1].at > alert.at):
        return None
    return alert


def state_text(board: DayBoard) -> str:
    return _STATE_TEXT[board.state]


def deadline_tone(deadline: Deadline) -> str:
    """bad | warn | quiet | open, for its colour. The board states a deadline's outcome only as text for
    people, so it is read from the words `views.board` writes ("missed: ...", "not needed: ...")."""
    outcome = deadline.outcome or ""
    if outcome.startswith(("missed", "failed")):
        return "bad"
    if outcome.startswith("triggered"):
        return "warn"
    if outcome.startswith("not needed"):
        return "quiet"
    return "open"
