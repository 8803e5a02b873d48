"""`cascade explain`: why a date's transitions did or did not trigger, in plain language.

Built from the same rows wherever they come from (a daemon, a replay timeline, BigQuery), into plain JSON
data (`explain`) that one renderer (`render_text`) turns into lines: the daemon serves the JSON, and the
command line renders whatever source it read with the same function, so every source explains alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

from policies.clock_math import local_date_and_minutes
from policies.model import Mode, Policy
from policies.modes import calendar_mode
from views.board import ExpectedInput, day_board, local_text
from views.eta import DurationBook
from views.history import AlertSent, Check, DayHistory, zulu_seconds

Json = dict[str, Any]
_DEADLINE_ALERTS = ("fallback_deadline_missed", "self_heal", "manual_intervention_required")


def explain(day: DayHistory, policy: Policy, typical: DurationBook, transition: str | None = None) -> Json:
    """The explanation of one date (or one transition of it), as JSON-ready data."""
    now = _last_instant(day)
    board = day_board(day, policy, now, typical)
    tz = policy.timezone
    lines = [line for line in board.phases if line.spec.transition is not None]
    if transition is not None:
        lines = [line for line in lines if line.spec.transition == transition]
    return {
        "game_date": day.game_date.isoformat(),
        "mode": board.mode.value if board.mode else None,
        "mode_reason": _mode_reason(day, policy),
        "outcome": board.state,
        "date_alerts": [_alert(a, tz) for a in day.alerts if a.transition is None],
        "transitions": [
            _transition(
                line.spec.transition or "", line.status.heading, line.detail, line.expected, day, policy
            )
            | {"deadlines": [_deadline(d) for d in line.deadlines]}
            for line in lines
        ],
        "timezone": tz,
    }


def _last_instant(day: DayHistory) -> datetime:
    """The explanation is of what was recorded: "now" is the newest row, so every source agrees."""
    times = [r.at for r in day.inputs] + [r.at for r in day.checks] + [r.at for r in day.triggers]
    times += [r.at for r in day.alerts] + [r.at for r in day.ended]
    return max(times, default=datetime.combine(day.game_date, time(), UTC))


def _deadline(deadline: Any) -> Json:
    return {
        "kind": deadline.kind,
        "at": zulu_seconds(deadline.at),
        "local": deadline.local,
        "passed": deadline.passed,
        "outcome": deadline.outcome,
    }


def _transition(
    name: str, heading: str, detail: str, expected: tuple[ExpectedInput, ...], day: DayHistory, policy: Policy
) -> Json:
    part = day.of(name)
    tz = policy.timezone
    trigger = day.trigger(name)
    return {
        "transition": name,
        "status": heading,
        "summary": detail,
        "inputs": [
            {
                "processor": e.processor,
                "critical": e.critical,
                "arrived_at": zulu_seconds(e.arrived_at),
                "arrived_local": local_text(e.arrived_at, tz) if e.arrived_at else None,
                "status": e.status,
                "coverage": e.coverage,
            }
            for e in expected
        ],
        "missing": [
            {"processor": e.processor, "critical": e.critical} for e in expected if e.arrived_at is None
        ],
        "unknown": sorted({i.raw_name for i in part.inputs if i.processor is None}),
        "steps": _steps(part, policy),
        "trigger": None
        if trigger is None
        else {
            "trigger_id": trigger.trigger_id,
            "at": zulu_seconds(trigger.at),
            "local": local_text(trigger.at, tz),
            "source": trigger.source,
            "degraded": trigger.degraded,
            "topic": trigger.topic,
            "messages": trigger.messages,
        },
        "breaker": [_alert(a, tz) for a in part.alerts if a.alert.startswith("circuit_")],
        "alerts": [_alert(a, tz) for a in part.alerts],
    }


def _alert(alert: AlertSent, tz: str) -> Json:
    return {
        "at": zulu_seconds(alert.at),
        "local": local_text(alert.at, tz),
        "alert": alert.alert,
        "severity": alert.severity,
        "message": alert.message,
        "next_action": alert.next_action,
        "next_at": zulu_seconds(alert.next_at),
    }


def _steps(part: DayHistory, policy: Policy) -> list[Json]:
    """The evaluations that changed the outcome (a new decision or a new set of missing inputs), each with
    the rule that decided it, and what the deadlines and the trigger did."""
    tz = policy.timezone
    steps: list[Json] = []
    previous: Check | None = None
    for check in part.checks:
        if previous is None or (check.decision, check.missing) != (previous.decision, previous.missing):
            steps.append(_step(check.at, tz, f"{_rule(check, policy)} ({check.cause})", check.decision))
        previous = check
    for alert in part.alerts:
        if alert.alert in _DEADLINE_ALERTS:
            steps.append(_step(alert.at, tz, _deadline_rule(alert, part, policy), alert.alert))
    for trigger in part.triggers:
        text = f"trigger {trigger.trigger_id} published to {trigger.topic} (source {trigger.source}"
        steps.append(_step(trigger.at, tz, text + (", degraded)" if trigger.degraded else ")"), "TRIGGER"))
    for end in part.ended:
        if end.outcome == "failed":
            steps.append(
                _step(end.at, tz, "the transition ended FAILED: only an operator moves it now", "END")
            )
    steps.sort(key=lambda s: (s["at"], _STEP_ORDER.get(s["outcome"], 1)))
    return steps


_STEP_ORDER = {"fallback_deadline_missed": 2, "self_heal": 2, "manual_intervention_required": 3, "END": 4}


def _step(at: Any, tz: str, rule: str, outcome: str) -> Json:
    return {"at": zulu_seconds(at), "local": local_text(at, tz), "rule": rule, "outcome": outcome}


def _rule(check: Check, policy: Policy) -> str:
    mode = policy.modes[check.mode]
    numbers = (
        f"completeness {check.completeness:.2f} (needs {mode.completeness:.2f}), quality {check.quality:.2f}"
    )
    if check.decision == "PROCEED":
        return f"every critical input in, {numbers} → PROCEED"
    if check.decision == "PROCEED_DEGRADED":
        return f"critical inputs in, {numbers}; degraded allowed in {check.mode.value} → PROCEED_DEGRADED"
    why = "; ".join(check.reasons) or numbers
    return f"{why} → {check.decision}"


def _deadline_rule(alert: AlertSent, part: DayHistory, policy: Policy) -> str:
    when = local_text(alert.at, policy.timezone)
    last = _check_at(part, alert)
    state = (
        f"completeness {last.completeness:.2f} < {policy.modes[last.mode].completeness:.2f}"
        if last is not None
        else "no check recorded"
    )
    missing = ", ".join(alert.missing) or (", ".join(last.missing) if last else "")
    if alert.alert == "fallback_deadline_missed":
        return f"fallback {when} passed with {state}, missing {missing or 'nothing'} → alert"
    if alert.alert == "manual_intervention_required":
        return f"self-heal {when}: a critical input is still missing ({missing}) → FAIL, manual intervention"
    return f"self-heal {when} reached with {state}"


def _check_at(part: DayHistory, alert: AlertSent) -> Check | None:
    before = [c for c in part.checks if c.at <= alert.at]
    return before[-1] if before else None


def _mode_reason(day: DayHistory, policy: Policy) -> str:
    mode, first = day.mode, day.first_at
    if mode is None or first is None:
        return "no input recorded yet"
    pinned = f"pinned at the first input, {local_text(first, policy.timezone)}"
    hinted = next((i for i in day.inputs if i.mode_hint), None)
    if hinted is not None and hinted.mode_hint == mode.value:
        return f"explicit: {hinted.raw_name} said {mode.value}; {pinned}"
    detected = calendar_mode(day.game_date, first, policy.timezone, policy.overnight_cutover)
    local_day, _ = local_date_and_minutes(first, policy.timezone)
    offset = (local_day - day.game_date).days
    if detected is mode:
        return (
            f"detected from the calendar: first input {_days(offset)} the game date → {mode.value}; {pinned}"
        )
    calendar = detected.value
    return f"{mode.value}: pinned by another instance or an upstream trigger (the calendar says {calendar})"


def _days(offset: int) -> str:
    if offset == 0:
        return "on"
    return f"{abs(offset)} day(s) {'after' if offset > 0 else 'before'}"


def _deadline_text(deadline: Mapping[str, Any]) -> str:
    if deadline["outcome"]:
        return str(deadline["outcome"])
    return "passed" if deadline["passed"] else "ahead"


def render_text(data: Mapping[str, Any]) -> list[str]:
    """Lines for people, from `explain`'s JSON (whatever source it came from)."""
    out = [
        f"Game date {data['game_date']}: {data['outcome']}",
        f"Mode: {data['mode']} — {data['mode_reason']}",
    ]
    for a in data.get("date_alerts", []):
        out.append(f"Date alert: {a['local']}  {a['severity']} {a['alert']}: {a['message']}")
    for t in data["transitions"]:
        out += ["", f"{t['transition']}: {t['status']} — {t['summary']}", "  Inputs:"]
        for i in t["inputs"]:
            mark = "critical" if i["critical"] else "optional"
            seen = f"arrived {i['arrived_local']}, {i['status']}" if i["arrived_at"] else "NOT ARRIVED"
            cov = f", coverage {i['coverage']:.2f}" if i["coverage"] is not None else ""
            out.append(f"    {i['processor']:<30} {mark:<8} {seen}{cov}")
        for name in t["unknown"]:
            out.append(f"    {name:<30} unknown  recorded, matches no policy name: not counted")
        missing = [f"{m['processor']} ({'critical' if m['critical'] else 'optional'})" for m in t["missing"]]
        out.append(f"  Missing: {', '.join(missing) or 'nothing'}")
        out.append("  Deadlines:")
        deadlines = [f"    {d['kind']:<9} {d['local']}: {_deadline_text(d)}" for d in t["deadlines"]]
        out += deadlines or ["    none"]
        out.append("  What decided it:")
        out += [f"    {s['local']}  {s['rule']}" for s in t["steps"]] or ["    no evaluation yet"]
        trig = t["trigger"]
        out.append(
            f"  Trigger: {trig['trigger_id']} at {trig['local']}, source {trig['source']}"
            f"{', degraded' if trig['degraded'] else ''}"
            if trig
            else "  Trigger: none"
        )
        out.append(f"  Breaker: {'; '.join(b['message'] for b in t['breaker']) or 'never opened'}")
        out.append("  Alerts:")
        out += [
            f"    {a['local']}  {a['severity']:<8} {a['alert']}: {a['message']}" for a in t["alerts"]
        ] or ["    none"]
    return out


__all__ = ["Mode", "explain", "render_text"]
