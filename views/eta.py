"""When a date's last trigger (the export) should go out: recent durations of each transition, chained.

A transition's duration is from the key opening (its first input, or the trigger of the phase before) to its
trigger, as `phase_completion` rows record it. The typical duration is the median over the same mode's recent
dates (`slo.eta_history_days`), the policy's `slo.default_transition_s` where there is none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from policies.model import Mode, Policy
from views.history import DayHistory
from views.phases import chain

TRIGGERED = ("triggered", "triggered_degraded")


@dataclass(frozen=True, slots=True)
class Durations:
    """Typical seconds per (mode, transition), and how many dates each median is over."""

    typical_s: Mapping[tuple[Mode, str], float]
    samples: Mapping[tuple[Mode, str], int]
    default_s: float

    def of(self, mode: Mode | None, transition: str) -> tuple[float, bool]:
        """(seconds, from history?)"""
        if mode is not None and (mode, transition) in self.typical_s:
            return self.typical_s[(mode, transition)], True
        return self.default_s, False


def durations(days: Iterable[DayHistory], before: date, policy: Policy) -> Durations:
    """Medians over the dates in [before - eta_history_days, before): what was known before that date."""
    since = before - timedelta(days=policy.slo.eta_history_days)
    seen: dict[tuple[Mode, str], list[float]] = defaultdict(list)
    for day in days:
        if not since <= day.game_date < before:
            continue
        for end in day.ended:
            if end.outcome in TRIGGERED:
                seen[(end.mode, end.transition)].append(max(end.duration_s, 0.0))
    return Durations(
        {key: float(median(values)) for key, values in seen.items()},
        {key: len(values) for key, values in seen.items()},
        float(policy.slo.default_transition_s),
    )


@dataclass(frozen=True, slots=True)
class Eta:
    at: datetime | None  # None: no estimate (failed, or a mode that never cascades)
    basis: str  # how it was estimated, for people
    done: bool = False


def estimate(day: DayHistory, policy: Policy, typical: Durations, now: datetime) -> Eta:
    order = chain(policy)
    if not order:
        return Eta(None, "no transitions in the policy")
    final = day.trigger(order[-1])
    if final is not None:
        return Eta(final.at, "done: the last trigger is published", done=True)
    mode = day.mode
    if mode is not None and not policy.modes[mode].cascade:
        return Eta(None, f"no ETA: {mode.value} dates never cascade")
    failed = [e.transition for e in day.ended if e.outcome == "failed" and day.trigger(e.transition) is None]
    if failed:
        return Eta(None, f"no ETA: {failed[0]} failed and needs an operator")
    return _chained(day, order, mode, typical, now)


def _chained(day: DayHistory, order: list[str], mode: Mode | None, typical: Durations, now: datetime) -> Eta:
    """Walk the chain: a triggered transition ends at its trigger; an open one at its opening plus its typical
    duration (never before now); one not open yet starts when the one before is expected to end."""
    cursor: datetime | None = None
    from_history = from_default = 0
    for transition in order:
        sent = day.trigger(transition)
        if sent is not None:
            cursor = sent.at
            continue
        seconds, known = typical.of(mode, transition)
        from_history, from_default = from_history + known, from_default + (not known)
        start = day.opened(transition) or cursor or now
        cursor = max(now, start + timedelta(seconds=seconds))
    return Eta(cursor, _basis(from_history, from_default))


def _basis(from_history: int, from_default: int) -> str:
    if not from_default:
        return "median durations of recent days"
    if not from_history:
        return "policy default durations (no history yet)"
    return "recent medians, policy defaults where there is no history"
