"""A game date's vital signs, kept up to date row by row: what the ETA, the SLOs and the live watch need.

An accumulator (`absorb` one audit row at a time, O(1) each) rather than a rebuild of the whole history,
because the router feeds it every row it writes, replay included. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from policies.model import Mode
from views.history import parse_time


@dataclass(slots=True)
class TransitionPulse:
    opened_at: datetime | None = None  # first input or check of this transition
    first_input_at: datetime | None = None  # first completion that matched a processor
    triggered_at: datetime | None = None
    source: str | None = None
    degraded: bool = False
    failed_at: datetime | None = None
    completeness: float | None = None  # of the newest check
    quality: float | None = None
    missing: tuple[str, ...] = ()
    # completeness and quality of the check that decided the trigger
    at_trigger: tuple[float, float] | None = None


@dataclass(slots=True)
class DatePulse:
    game_date: date
    mode: Mode | None = None
    first_at: datetime | None = None  # first input (or check) of the date
    last_progress_at: datetime | None = None  # newest input or trigger: what "progress" means
    last_at: datetime | None = None  # newest row of any kind
    transitions: dict[str, TransitionPulse] = field(default_factory=dict)

    def absorb(self, row: Mapping[str, Any]) -> str:
        """Take one audit row of this date in; returns its kind. Rows arrive in write (time) order."""
        kind = str(row["kind"])
        handler = _HANDLERS.get(kind)
        if handler is not None:
            at = parse_time(row["at"])
            self.last_at = at if self.last_at is None or at > self.last_at else self.last_at
            handler(self, self._of(str(row["transition"])), row, at)
        return kind

    def _of(self, transition: str) -> TransitionPulse:
        found = self.transitions.get(transition)
        if found is None:
            found = self.transitions[transition] = TransitionPulse()
        return found

    def _opened(self, part: TransitionPulse, at: datetime) -> None:
        # The earliest, not the first seen: seeded history may arrive after rows written since the start.
        if part.opened_at is None or at < part.opened_at:
            part.opened_at = at
        if self.first_at is None or at < self.first_at:
            self.first_at = at

    def _progress(self, at: datetime) -> None:
        if self.last_progress_at is None or at > self.last_progress_at:
            self.last_progress_at = at

    def started_at(self, first_transition: str | None) -> datetime | None:
        """When the date's clock starts: its first phase-2 completion (a name the policy knows), else its
        first row."""
        part = self.transitions.get(first_transition) if first_transition else None
        return (part.first_input_at if part is not None else None) or self.first_at

    def learn(
        self, transition: str, triggered_at: datetime | None, source: str | None, progress_at: datetime | None
    ) -> None:
        """What another instance did, as this instance's router state knows it (merged from the shared
        record): a trigger it published, inputs it received. Rows only tell what this instance wrote."""
        part = self._of(transition)
        if triggered_at is not None and part.triggered_at is None:
            part.triggered_at, part.source = triggered_at, source
            self._progress(triggered_at)
        if progress_at is not None:
            self._progress(progress_at)

    def triggered(self, transition: str) -> bool:
        part = self.transitions.get(transition)
        return part is not None and part.triggered_at is not None

    @property
    def failed(self) -> list[str]:
        return [name for name, p in self.transitions.items() if p.failed_at and not p.triggered_at]


def _on_input(pulse: DatePulse, part: TransitionPulse, row: Mapping[str, Any], at: datetime) -> None:
    pulse._opened(part, at)
    pulse._progress(at)
    if row.get("processor") is not None and (part.first_input_at is None or at < part.first_input_at):
        part.first_input_at = at


def _on_decision(pulse: DatePulse, part: TransitionPulse, row: Mapping[str, Any], at: datetime) -> None:
    pulse._opened(part, at)
    if pulse.mode is None:
        pulse.mode = Mode(row["mode"])
    part.completeness, part.quality = float(row["completeness"]), float(row["quality_score"])
    part.missing = tuple(row.get("missing") or ())


def _on_trigger(pulse: DatePulse, part: TransitionPulse, row: Mapping[str, Any], at: datetime) -> None:
    if part.triggered_at is not None:
        return  # the other messages of the same trigger
    pulse._progress(at)
    if pulse.mode is None:
        pulse.mode = Mode(row["mode"])
    part.triggered_at, part.source, part.degraded = at, str(row["source"]), bool(row["degraded"])
    if part.completeness is not None and part.quality is not None:
        part.at_trigger = (part.completeness, part.quality)


def _on_ended(pulse: DatePulse, part: TransitionPulse, row: Mapping[str, Any], at: datetime) -> None:
    if row["outcome"] == "failed":
        part.failed_at = at


_HANDLERS = {
    "input": _on_input,
    "decision": _on_decision,
    "trigger": _on_trigger,
    "phase_completion": _on_ended,
}


def pulses(rows: Iterable[Mapping[str, Any]]) -> dict[date, DatePulse]:
    """Every dated row absorbed, per game date (rows in time order, as `views.history.canonical_order`)."""
    out: dict[date, DatePulse] = {}
    for row in rows:
        text = row.get("game_date")
        if not text or row.get("kind") not in _HANDLERS:
            continue
        day = date.fromisoformat(str(text))
        pulse = out.get(day)
        if pulse is None:
            pulse = out[day] = DatePulse(day)
        pulse.absorb(row)
    return out
