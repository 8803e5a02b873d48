"""The day board: one game date at a glance, phase by phase, built from its recorded history.

One model, rendered three ways (the daemon's HTML pages, `cascade status`, `cascade replay --report`).
Pure: `now` is an argument, and only the rows and the policy are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from policies.clock_math import zone
from policies.deadlines import deadlines_for
from policies.model import Mode, Policy
from views.eta import DurationBook, Eta, estimate, slo_deadline
from views.history import Check, DayHistory, TriggerSent
from views.phases import PhaseSpec, phases
from views.pulse import DatePulse, pulses


class PhaseStatus(StrEnum):
    COMPLETE = "complete"
    DEGRADED = "degraded"  # triggered without everything (fallback, self-heal, degraded decision)
    TRIGGERED = "triggered"  # the last phase: started by its trigger; its own completion is not routed here
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"  # everything but a critical input is in
    PENDING = "pending"
    FAILED = "failed"
    BREAKER_OPEN = "breaker_open"
    RECORDING = "recording"  # backfill: recorded and evaluated, never cascades

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def heading(self) -> str:
        return _TITLES[self]


_SYMBOLS = {
    PhaseStatus.COMPLETE: "✅",
    PhaseStatus.DEGRADED: "⚠️",
    PhaseStatus.TRIGGERED: "🚀",
    PhaseStatus.IN_PROGRESS: "⏳",
    PhaseStatus.WAITING: "⛔",
    PhaseStatus.PENDING: "⏸️",
    PhaseStatus.FAILED: "❌",
    PhaseStatus.BREAKER_OPEN: "🔌",
    PhaseStatus.RECORDING: "📼",
}
_TITLES = {
    PhaseStatus.COMPLETE: "Complete",
    PhaseStatus.DEGRADED: "Complete (degraded)",
    PhaseStatus.TRIGGERED: "Triggered",
    PhaseStatus.IN_PROGRESS: "In Progress",
    PhaseStatus.WAITING: "Waiting on a critical input",
    PhaseStatus.PENDING: "Pending",
    PhaseStatus.FAILED: "Failed",
    PhaseStatus.BREAKER_OPEN: "Breaker open",
    PhaseStatus.RECORDING: "Backfill, recorded only",
}
_BREAKER_OPENED, _BREAKER_CLOSED = "circuit_open", "circuit_closed"
DEADLINE_SLACK = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ExpectedInput:
    processor: str
    critical: bool
    arrived_at: datetime | None
    status: str | None  # the newest report's status
    coverage: float | None  # from the last check


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: str  # fallback | self_heal
    at: datetime
    local: str  # "06:00 AM ET, Wed Feb 4"
    passed: bool
    outcome: str | None  # what happened there, from the alerts and triggers


@dataclass(frozen=True, slots=True)
class PhaseLine:
    spec: PhaseSpec
    status: PhaseStatus
    detail: str  # one line for people: "1/2 inputs, waiting on nbac_gamebook"
    expected: tuple[ExpectedInput, ...] = ()
    unknown: tuple[str, ...] = ()  # reported names no policy name matches
    completeness: float | None = None
    quality: float | None = None
    missing: tuple[str, ...] = ()
    trigger: TriggerSent | None = None
    deadlines: tuple[Deadline, ...] = ()
    progress: float = 0.0  # 0..1, for the overall percentage
    needs_operator: bool = False  # the transition ended failed: nothing automatic moves it any more

    @property
    def arrived(self) -> int:
        return sum(1 for e in self.expected if e.arrived_at is not None)

    @property
    def next_deadline(self) -> Deadline | None:
        return next((d for d in self.deadlines if not d.passed), None)


@dataclass(frozen=True, slots=True)
class DayBoard:
    game_date: date
    mode: Mode | None
    phases: tuple[PhaseLine, ...]
    overall_pct: int
    eta: Eta
    eta_local: str | None
    slo_deadline: datetime | None  # first input + the mode's end-to-end objective
    slo_deadline_local: str | None
    at_risk: bool  # ETA past the SLO deadline while there is still time to act
    generated_at: datetime
    timezone_label: str
    timezone: str = "UTC"  # the policy's zone name (the label is for people)

    @property
    def state(self) -> str:
        """complete | failed | in_progress | pending, for the one-row-per-date list."""
        statuses = {line.status for line in self.phases}
        if self.eta.done:
            return "complete"
        if PhaseStatus.FAILED in statuses or any(line.needs_operator for line in self.phases):
            return "failed"
        if statuses == {PhaseStatus.PENDING}:
            return "pending"
        return "in_progress"


def day_board(day: DayHistory, policy: Policy, now: datetime, book: DurationBook) -> DayBoard:
    pulse = pulses(day.rows()).get(day.game_date, DatePulse(day.game_date))
    mode = day.mode
    lines = [_line(spec, day, mode, policy, now) for spec in phases(policy)]
    lines = _final_phase(lines, policy.timezone)
    eta = estimate(pulse, policy, book, now)
    deadline = slo_deadline(pulse, policy)
    tz = policy.timezone
    return DayBoard(
        game_date=day.game_date,
        mode=mode,
        phases=tuple(lines),
        overall_pct=round(100 * sum(line.progress for line in lines) / max(len(lines), 1)),
        eta=eta,
        eta_local=local_text(eta.at, tz) if eta.at else None,
        slo_deadline=deadline,
        slo_deadline_local=local_text(deadline, tz) if deadline else None,
        at_risk=at_risk(eta, deadline, now),
        generated_at=now,
        timezone_label=zone_label(tz),
        timezone=tz,
    )


def at_risk(eta: Eta, deadline: datetime | None, now: datetime) -> bool:
    """The ETA is past the SLO deadline while the deadline is still ahead: time to act."""
    return not eta.done and eta.at is not None and deadline is not None and now < deadline < eta.at


def _line(spec: PhaseSpec, day: DayHistory, mode: Mode | None, policy: Policy, now: datetime) -> PhaseLine:
    if spec.transition is None:
        return PhaseLine(spec, PhaseStatus.PENDING, "not triggered yet")
    part = day.of(spec.transition)
    if not (part.inputs or part.checks or part.triggers or part.ended) or mode is None:
        return PhaseLine(spec, PhaseStatus.PENDING, "no input yet", _expected(part, mode, policy, spec))
    expected = _expected(part, mode, policy, spec)
    last = part.checks[-1] if part.checks else None
    trigger = day.trigger(spec.transition)
    status, detail = _status(part, mode, policy, expected, last, trigger)
    return PhaseLine(
        spec,
        status,
        detail,
        expected,
        tuple(sorted({i.raw_name for i in part.inputs if i.processor is None})),
        last.completeness if last else None,
        last.quality if last else None,
        last.missing if last else (),
        trigger,
        _deadlines(part, mode, policy, spec.transition, now),
        _progress(status, expected),
        trigger is None and any(e.outcome == "failed" for e in part.ended),
    )


def _expected(
    part: DayHistory, mode: Mode | None, policy: Policy, spec: PhaseSpec
) -> tuple[ExpectedInput, ...]:
    assert spec.transition is not None
    expectation = policy.transitions[spec.transition].expectation(mode or Mode.OVERNIGHT)
    coverage = dict(part.checks[-1].coverage) if part.checks else {}
    out = []
    for name in expectation.all:
        seen = [i for i in part.inputs if i.processor == name]
        newest = max(seen, key=lambda i: i.reported_at) if seen else None
        out.append(
            ExpectedInput(
                name,
                name in expectation.critical,
                seen[0].at if seen else None,
                newest.status if newest else None,
                coverage.get(name),
            )
        )
    return tuple(out)


def _status(
    part: DayHistory,
    mode: Mode,
    policy: Policy,
    expected: tuple[ExpectedInput, ...],
    last: Check | None,
    trigger: TriggerSent | None,
) -> tuple[PhaseStatus, str]:
    if trigger is not None:
        how = f"triggered {trigger.source}" + (" (degraded)" if trigger.degraded else "")
        return (PhaseStatus.DEGRADED if trigger.degraded else PhaseStatus.COMPLETE), how
    critical_missing = [e.processor for e in expected if e.critical and e.arrived_at is None]
    if any(e.outcome == "failed" for e in part.ended):
        if critical_missing:
            # Still waiting, literally: the input arriving now would trigger it. Self-heal gave up on it.
            text = f"waiting on critical {', '.join(critical_missing)}; self-heal gave up: needs an operator"
            return PhaseStatus.WAITING, text
        return PhaseStatus.FAILED, f"failed: {_missing_text(last)}; needs an operator"
    if not policy.modes[mode].cascade:
        return PhaseStatus.RECORDING, f"{mode.value}: recorded, never cascades"
    if _breaker_open(part):
        return PhaseStatus.BREAKER_OPEN, "breaker open after failed inputs"
    if last is not None and last.decision == "FAIL":
        return PhaseStatus.FAILED, f"a critical input failed: {'; '.join(last.reasons)}"
    if critical_missing:
        return PhaseStatus.WAITING, f"waiting on critical {', '.join(critical_missing)}"
    if last is not None and last.decision in ("PROCEED", "PROCEED_DEGRADED"):
        return PhaseStatus.IN_PROGRESS, "trigger decided, publishing"
    why = "; ".join(last.reasons) if last is not None and last.reasons else "collecting inputs"
    return PhaseStatus.IN_PROGRESS, why


def _missing_text(last: Check | None) -> str:
    if last is None or not last.missing:
        return "see the decisions"
    return "missing " + ", ".join(last.missing)


def _breaker_open(part: DayHistory) -> bool:
    """Open from its `circuit_open` alert until an input succeeds after it (a success closes it)."""
    opened = [a.at for a in part.alerts if a.alert == _BREAKER_OPENED]
    if not opened:
        return False
    return not any(i.at > opened[-1] and i.status != "failed" for i in part.inputs)


def _deadlines(
    part: DayHistory, mode: Mode, policy: Policy, transition: str, now: datetime
) -> tuple[Deadline, ...]:
    mode_spec, spec = policy.modes[mode], policy.transitions[transition]
    due = deadlines_for(part.game_date, mode_spec, spec, policy.timezone)
    out = []
    for kind, at in (("fallback", due.fallback_at), ("self_heal", due.self_heal_at)):
        if at is None:
            continue
        outcome = _deadline_outcome(part, kind, at)
        # Passed by the clock; what it did, from the rows (an outcome can be known before: not needed).
        passed = at <= now or outcome is not None
        out.append(Deadline(kind, at, local_text(at, policy.timezone), passed, outcome))
    return tuple(out)


def _deadline_outcome(part: DayHistory, kind: str, at: datetime) -> str | None:
    """What the deadline did, if it fired: read from the trigger and alerts at that instant."""
    trigger = part.triggers[0] if part.triggers else None
    if trigger is not None and trigger.source == kind:
        return f"triggered (degraded) at {kind}"
    if trigger is not None and trigger.at <= at:
        return "not needed: triggered before it"
    # The alerts the deadline raised: written at its instant (a live clock: within moments of it).
    names = {a.alert for a in part.alerts if at <= a.at <= at + DEADLINE_SLACK}
    if kind == "fallback" and "fallback_deadline_missed" in names:
        return "missed: not enough to trigger, alert sent"
    if kind == "self_heal" and "manual_intervention_required" in names:
        return "failed: a critical input is still missing, manual intervention"
    if kind == "self_heal" and "self_heal" in names:
        return "reached"
    return None


def _progress(status: PhaseStatus, expected: tuple[ExpectedInput, ...]) -> float:
    if status in (PhaseStatus.COMPLETE, PhaseStatus.DEGRADED, PhaseStatus.TRIGGERED):
        return 1.0
    if not expected:
        return 0.0
    # Inputs are most of a phase; its trigger is the rest.
    return 0.9 * sum(1 for e in expected if e.arrived_at is not None) / len(expected)


def _final_phase(lines: list[PhaseLine], tz: str) -> list[PhaseLine]:
    """The last phase has no completions routed here: it is triggered when the transition before it is."""
    if len(lines) < 2 or lines[-1].spec.transition is not None:
        return lines
    before = lines[-2]
    if before.trigger is None:
        return lines
    sent = before.trigger
    detail = f"triggered {local_text(sent.at, tz)} ({sent.source}{', degraded' if sent.degraded else ''})"
    return [*lines[:-1], PhaseLine(lines[-1].spec, PhaseStatus.TRIGGERED, detail, trigger=sent, progress=1.0)]


def local_text(at: datetime, tz: str) -> str:
    """'11:30 AM ET, Wed Dec 31' in the policy's timezone."""
    local = at.astimezone(zone(tz))
    return f"{local:%I:%M %p} {zone_label(tz)}, {local:%a %b} {local.day}"


def zone_label(tz: str) -> str:
    return {"America/New_York": "ET", "America/Chicago": "CT", "America/Los_Angeles": "PT", "UTC": "UTC"}.get(
        tz, tz
    )
