"""When a date's last trigger (the export) should go out: recent durations of each transition, chained.

A transition's duration is from its key opening to its trigger, as `phase_completion` rows record it. The
typical duration is the median over the same mode's recent dates (`slo.eta_history_days`), the policy's
`slo.default_transition_s` where there is none.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from policies.model import Mode, Policy
from views.phases import chain
from views.pulse import DatePulse

TRIGGERED = ("triggered", "triggered_degraded")


@dataclass
class DurationBook:
    """Transition durations by (mode, transition), each with its game date; fed `phase_completion` rows."""

    default_s: float
    history_days: int
    # (mode, transition) -> sorted [(game_date, seconds)]
    seen: dict[tuple[Mode, str], list[tuple[date, float]]] = field(default_factory=lambda: defaultdict(list))
    # Medians asked again and again (every assessment of every open date): kept until that history changes.
    _medians: dict[tuple[Mode, str, date], tuple[float, bool]] = field(default_factory=dict, repr=False)

    @classmethod
    def for_policy(cls, policy: Policy, rows: Iterable[Mapping[str, Any]] = ()) -> DurationBook:
        book = cls(float(policy.slo.default_transition_s), policy.slo.eta_history_days)
        for row in rows:
            book.add(row)
        return book

    def add(self, row: Mapping[str, Any]) -> None:
        """Take a `phase_completion` row in (others are ignored)."""
        if row.get("kind") != "phase_completion" or row.get("outcome") not in TRIGGERED:
            return
        opened = datetime.fromisoformat(str(row["opened_at"]).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(str(row["ended_at"]).replace("Z", "+00:00"))
        key = (Mode(row["mode"]), str(row["transition"]))
        self._medians.clear()
        insort(
            self.seen[key],
            (date.fromisoformat(str(row["game_date"])), max((ended - opened).total_seconds(), 0)),
        )

    def typical(self, mode: Mode | None, transition: str, before: date) -> tuple[float, bool]:
        """(median seconds over the dates in [before - history_days, before), from history?)"""
        if mode is None:
            return self.default_s, False
        known = self._medians.get((mode, transition, before))
        if known is None:
            known = self._medians[(mode, transition, before)] = self._median(mode, transition, before)
        return known

    def _median(self, mode: Mode, transition: str, before: date) -> tuple[float, bool]:
        entries = self.seen.get((mode, transition))
        if not entries:
            return self.default_s, False
        # Sorted by date: the window is one slice (asked for every row the watch sees, history grows).
        since = before - timedelta(days=self.history_days)
        low, high = bisect_left(entries, (since, -1.0)), bisect_left(entries, (before, -1.0))
        recent = [seconds for _, seconds in entries[low:high]]
        return (float(median(recent)), True) if recent else (self.default_s, False)

    def forget(self, before: date) -> None:
        self._medians.clear()
        for key, entries in self.seen.items():
            self.seen[key] = [e for e in entries if e[0] >= before]


@dataclass(frozen=True, slots=True)
class Eta:
    at: datetime | None  # None: no estimate (failed, or a mode that never cascades)
    basis: str  # how it was estimated, for people
    done: bool = False


def estimate(pulse: DatePulse, policy: Policy, book: DurationBook, now: datetime) -> Eta:
    order = chain(policy)
    if not order:
        return Eta(None, "no transitions in the policy")
    final = pulse.transitions.get(order[-1])
    if final is not None and final.triggered_at is not None:
        return Eta(final.triggered_at, "done: the last trigger is published", done=True)
    if pulse.mode is not None and not policy.modes[pulse.mode].cascade:
        return Eta(None, f"no ETA: {pulse.mode.value} dates never cascade")
    if pulse.failed:
        return Eta(None, f"no ETA: {pulse.failed[0]} failed and needs an operator")
    return _chained(pulse, order, book, now)


def _chained(pulse: DatePulse, order: list[str], book: DurationBook, now: datetime) -> Eta:
    """Walk the chain: a triggered transition ends at its trigger; an open one at its opening plus its typical
    duration (never before now); one not open yet starts when the one before is expected to end."""
    cursor: datetime | None = None
    from_history = from_default = 0
    for transition in order:
        part = pulse.transitions.get(transition)
        if part is not None and part.triggered_at is not None:
            cursor = part.triggered_at
            continue
        seconds, known = book.typical(pulse.mode, transition, pulse.game_date)
        from_history, from_default = from_history + known, from_default + (not known)
        # The key opened at the trigger before it (durations are measured from there), or at its own first
        # row if that came earlier; the first transition at its first row.
        opened = [t for t in ((part.opened_at if part is not None else None), cursor) if t is not None]
        start = min(opened) if opened else now
        cursor = max(now, start + timedelta(seconds=seconds))
    return Eta(cursor, _basis(from_history, from_default))


def after_open_s(pulse: DatePulse, policy: Policy, book: DurationBook) -> float:
    """Typical seconds of the transitions after the first one not triggered yet: once the clock passes that
    one's expected end, the ETA is now + this (it moves with the clock)."""
    order = chain(policy)
    first_open = next((i for i, t in enumerate(order) if not pulse.triggered(t)), len(order))
    return sum(book.typical(pulse.mode, t, pulse.game_date)[0] for t in order[first_open + 1 :])


def _basis(from_history: int, from_default: int) -> str:
    if not from_default:
        return "median durations of recent days"
    if not from_history:
        return "policy default durations (no history yet)"
    return "recent medians, policy defaults where there is no history"


def slo_deadline(pulse: DatePulse, policy: Policy) -> datetime | None:
    """First phase-2 input of the date + its mode's end-to-end objective."""
    order = chain(policy)
    started = pulse.started_at(order[0] if order else None)
    if pulse.mode is None or started is None:
        return None
    target = policy.slo.for_mode(pulse.mode).end_to_end_s
    return started + timedelta(seconds=target) if target else None
