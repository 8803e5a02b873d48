"""The live watch over whole dates: the alerts no single (date, transition) can raise by itself.

- `slo_violation` when a date ends having missed an objective (which, target, actual);
- `slo_at_risk` once, when the ETA passes the SLO deadline while the deadline is still ahead;
- `pipeline_stuck` when a date (in `slo.stuck_modes`) made no progress for `slo.stuck_after_s`; raised again
  only after new progress stalls again.
Pure: the shell feeds it the date's pulse after each row and on its ticks, and sends what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from policies.deadlines import deadlines_for
from policies.model import Policy
from router.effects import RaiseAlert, Severity
from views.board import at_risk, local_text
from views.eta import DurationBook, after_open_s, estimate, slo_deadline
from views.phases import chain
from views.pulse import DatePulse
from views.slo import Json, missed, outcome


@dataclass(slots=True)
class WatchFlags:
    ended: bool = False
    at_risk: bool = False
    stuck_since: datetime | None = None  # the progress time a pipeline_stuck alert was raised for


@dataclass(frozen=True, slots=True)
class WatchAlert:
    effect: RaiseAlert
    mode: str | None
    missing: tuple[str, ...]
    next_action: str | None
    next_at: datetime | None


@dataclass(frozen=True, slots=True)
class Verdict:
    alerts: tuple[WatchAlert, ...] = ()
    slo_row: Json | None = None


def assess(pulse: DatePulse, flags: WatchFlags, policy: Policy, book: DurationBook, now: datetime) -> Verdict:
    """What to raise for this date now; updates `flags` so each alert is raised once."""
    if flags.ended or pulse.mode is None:
        return Verdict()
    row = outcome(pulse, policy)
    if row is not None:
        flags.ended = True
        return Verdict(_violation(pulse, row, policy), row)
    if not policy.modes[pulse.mode].cascade:
        return Verdict()
    alerts = [*_at_risk(pulse, flags, policy, book, now), *_stuck(pulse, flags, policy, now)]
    return Verdict(tuple(alerts))


def next_due(
    pulse: DatePulse, flags: WatchFlags, policy: Policy, book: DurationBook, now: datetime
) -> datetime | None:
    """When `assess` could raise something without a new input or trigger: the stuck threshold, or the
    instant the ETA (moving with the clock) passes the SLO deadline."""
    mode = pulse.mode
    if flags.ended or mode is None or not policy.modes[mode].cascade:
        return None  # `assess` never looks at such a date: a due time here would be due forever
    times = [_stuck_due(pulse, flags, policy), _risk_due(pulse, flags, policy, book, now)]
    return min((t for t in times if t is not None), default=None)


def _stuck_due(pulse: DatePulse, flags: WatchFlags, policy: Policy) -> datetime | None:
    if pulse.mode not in policy.slo.stuck_modes or pulse.last_progress_at is None:
        return None
    if flags.stuck_since == pulse.last_progress_at:
        return None
    return pulse.last_progress_at + timedelta(seconds=policy.slo.stuck_after_s)


def _risk_due(
    pulse: DatePulse, flags: WatchFlags, policy: Policy, book: DurationBook, now: datetime
) -> datetime | None:
    """ETA(t) = max(t, expected end of the open transition) + the typical rest: it passes the deadline at
    deadline - rest (the first whole second after). Only while that is still ahead of now and before the
    deadline itself (rest > 0)."""
    deadline = slo_deadline(pulse, policy)
    if flags.at_risk or deadline is None:
        return None
    rest = after_open_s(pulse, policy, book)
    due = deadline - timedelta(seconds=rest) + _JUST_AFTER
    return due if rest > 0 and now < due < deadline else None


_JUST_AFTER = timedelta(seconds=1)


def _current(pulse: DatePulse, policy: Policy) -> str | None:
    """The first transition of the chain not triggered yet: where the date is."""
    return next((t for t in chain(policy) if not pulse.triggered(t)), None)


def _violation(pulse: DatePulse, row: Json, policy: Policy) -> tuple[WatchAlert, ...]:
    misses = missed(row)
    if not misses:
        return ()
    parts = [_miss_text(m) for m in misses]
    text = f"{pulse.game_date} ({row['mode']}) {row['outcome']} and missed its SLO: {'; '.join(parts)}"
    effect = RaiseAlert("slo_violation", Severity.ERROR, pulse.game_date, None, text)
    action = f"nothing automatic: the date ended; `cascade explain {pulse.game_date}` says why"
    return (WatchAlert(effect, row["mode"], (), action, None),)


def _miss_text(result: Mapping[str, Any]) -> str:
    name, target, actual = result["slo"], result["target"], result["actual"]
    if name == "end_to_end":
        got = "never reached the last trigger" if actual is None else f"{actual / 60:.0f} min"
        return f"end_to_end {got} (target {target / 60:.0f} min)"
    got = "no trigger" if actual is None else f"{actual:.2f}"
    return f"{name} {got} (target {target:.2f})"


def _at_risk(
    pulse: DatePulse, flags: WatchFlags, policy: Policy, book: DurationBook, now: datetime
) -> list[WatchAlert]:
    if flags.at_risk:
        return []
    eta, deadline = estimate(pulse, policy, book, now), slo_deadline(pulse, policy)
    if not at_risk(eta, deadline, now):
        return []
    assert eta.at is not None and deadline is not None and pulse.mode is not None
    flags.at_risk = True
    tz, where = policy.timezone, _current(pulse, policy)
    text = (
        f"{pulse.game_date} ({pulse.mode.value}): the export is expected at {local_text(eta.at, tz)} "
        f"({eta.basis}), after its SLO deadline {local_text(deadline, tz)}; now at {where}"
    )
    return [_with_context("slo_at_risk", Severity.WARNING, text, pulse, policy, where, now)]


def _stuck(pulse: DatePulse, flags: WatchFlags, policy: Policy, now: datetime) -> list[WatchAlert]:
    due = _stuck_due(pulse, flags, policy)
    if due is None or now < due:
        return []
    assert pulse.last_progress_at is not None and pulse.mode is not None
    flags.stuck_since = pulse.last_progress_at
    tz, where = policy.timezone, _current(pulse, policy)
    idle_min = (now - pulse.last_progress_at).total_seconds() / 60
    text = (
        f"{pulse.game_date} ({pulse.mode.value}) made no progress for {idle_min:.0f} min "
        f"(no input or trigger since {local_text(pulse.last_progress_at, tz)}); now at {where}"
    )
    return [_with_context("pipeline_stuck", Severity.ERROR, text, pulse, policy, where, now)]


def _with_context(
    name: str,
    severity: Severity,
    text: str,
    pulse: DatePulse,
    policy: Policy,
    where: str | None,
    now: datetime,
) -> WatchAlert:
    """An alert about the date as it stands at `where`: what is missing there and the next deadline."""
    assert pulse.mode is not None
    effect = RaiseAlert(name, severity, pulse.game_date, where, text)
    action, at = _next_deadline(pulse, policy, where, now)
    return WatchAlert(effect, pulse.mode.value, _missing(pulse, where), action, at)


def _missing(pulse: DatePulse, transition: str | None) -> tuple[str, ...]:
    part = pulse.transitions.get(transition) if transition else None
    return part.missing if part is not None else ()


def _next_deadline(
    pulse: DatePulse, policy: Policy, transition: str | None, now: datetime
) -> tuple[str | None, datetime | None]:
    if transition is None or pulse.mode is None:
        return None, None
    due = deadlines_for(
        pulse.game_date, policy.modes[pulse.mode], policy.transitions[transition], policy.timezone
    )
    for kind, at in (("fallback", due.fallback_at), ("self-heal", due.self_heal_at)):
        if at is not None and at > now:
            return f"{kind} deadline of {transition}", at
    return "nothing automatic: the deadlines passed; an operator decides", None
