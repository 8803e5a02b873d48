"""The per-(game_date, transition) state machine: `step(state, event, now, policy) -> Step`.

Pure and synchronous. The shell feeds it messages, timer ticks and publish outcomes, and carries out the
effects it returns. Invariants it protects:
- one trigger_id per key, and the state says "triggered" only after the shell confirmed the publish;
- redelivered messages change nothing;
- timers (re-check, fallback, self-heal, breaker cooldown, publish retry) work without any message arriving;
- a missing or failed critical input never triggers by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from policies import breaker as breakers
from policies.breaker import Breaker, BreakerState
from policies.decision import CheckResult, Decision, check
from policies.model import Mode, Policy, Status
from policies.modes import ModeHints, calendar_mode, detect_mode, hinted_mode
from router import events as ev
from router.effects import (
    Cause,
    DuplicateIgnored,
    Effect,
    EmitDecision,
    PinMode,
    RecordCompletion,
    SetTimer,
    Severity,
    ShareBreaker,
    Source,
)
from router.keys import Key
from router.outcomes import (
    alert,
    begin_publish,
    ended,
    on_already_published,
    on_claim_held,
    on_publish_failed,
    on_published,
    trip_breaker,
)
from router.state import DateState, Phase, Published
from router.timers import deadlines, due, wake_at


@dataclass(frozen=True, slots=True)
class Step:
    state: DateState | None
    effects: tuple[Effect, ...]


def step(state: DateState | None, key: Key, event: ev.Event, now: datetime, policy: Policy) -> Step:
    out: list[Effect] = []
    new_state = _dispatch(state, key, event, now, policy, out)
    if new_state is None:
        return Step(None, tuple(out))
    before = state.breaker if state is not None else Breaker()
    if new_state.breaker.changed_at != before.changed_at and not isinstance(event, ev.Synced):
        out.append(ShareBreaker(key, new_state.breaker))
    return Step(*_reschedule(new_state, policy, out))


def _dispatch(
    state: DateState | None, key: Key, event: ev.Event, now: datetime, policy: Policy, out: list[Effect]
) -> DateState | None:
    if key.transition not in policy.transitions:
        return state  # the transition was removed by a policy reload: keep the record, do nothing
    match event:
        case ev.CompletionArrived():
            return _on_completion(state, key, event, now, policy, out)
        case ev.OpenedByUpstream():
            return _on_opened(state, key, event, now, policy, out)
        case ev.ExpectedDayStarted():
            return _on_expected(state, key, now, policy, out)
        case ev.Synced():
            return _on_synced(state, key, event, now, policy, out)
        case ev.Restored():
            return _on_restored(state, key, event, now, policy, out)
    if state is None:
        return None  # nothing to tick, confirm or reset for a key that never opened
    match event:
        case ev.Tick():
            return _on_tick(state, now, policy, out)
        case ev.PublishSucceeded():
            return on_published(state, event.trigger_id, event.published_at, policy, out)
        case ev.AlreadyPublished():
            return on_already_published(state, event, now, policy, out)
        case ev.PublishFailed():
            return on_publish_failed(state, event, now, policy, out)
        case ev.ClaimHeldElsewhere():
            return on_claim_held(state, event)
        case ev.ResetBreaker():
            return _on_reset(state, now, policy, out)
        case ev.ForceTrigger():
            return _on_force(state, event, now, policy, out)
    return state


# --- messages -------------------------------------------------------------------------------------------


def _open(
    key: Key, mode: Mode, now: datetime, policy: Policy, out: list[Effect], explicit: bool = False
) -> DateState:
    out.append(PinMode(key, mode, explicit))
    return DateState(
        key=key,
        mode=mode,
        mode_explicit=explicit,
        opened_at=now,
        next_check_at=_next_check(mode, now, policy),
    )


def _on_opened(
    state: DateState | None,
    key: Key,
    event: ev.OpenedByUpstream,
    now: datetime,
    policy: Policy,
    out: list[Effect],
) -> DateState:
    if state is not None:
        return state if state.correlation_id else state.evolve(correlation_id=event.correlation_id)
    return _open(key, event.mode, now, policy, out).evolve(correlation_id=event.correlation_id)


def _on_expected(
    state: DateState | None, key: Key, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if state is not None:
        return state  # opened by a message, upstream or another instance: never re-opened
    mode = calendar_mode(key.game_date, now, policy.timezone, policy.overnight_cutover)
    return _open(key, mode, now, policy, out).evolve(expected=True)


def _on_completion(
    state: DateState | None,
    key: Key,
    event: ev.CompletionArrived,
    now: datetime,
    policy: Policy,
    out: list[Effect],
) -> DateState:
    if state is None:
        mode = detect_mode(key.game_date, now, event.hints, policy.timezone, policy.overnight_cutover)
        state = _open(key, mode, now, policy, out, explicit=event.hints.processing_mode is not None)
    if event.message_id in state.seen:
        out.append(DuplicateIgnored(key, event.message_id))
        return state
    state = _adopt_explicit_mode(state, event, out)
    out.append(recorded(key, event))
    state = _remember(state, event, now, policy, out)
    if state.settled:
        return state  # late input after the trigger: recorded for the audit, never a second trigger
    if state.breaker.state is BreakerState.OPEN:
        return state.evolve(phase=Phase.BREAKER_OPEN)
    return _evaluate_and_act(state, now, policy, out, cause="event")


def recorded(key: Key, event: ev.CompletionArrived) -> RecordCompletion:
    """How a completion is recorded: the same for its first delivery and any redelivery of it."""
    hint = hinted_mode(event.hints)
    return RecordCompletion(
        key, event.message_id, event.processor, event.raw_name, event.report, event.original, hint
    )


def _on_synced(
    state: DateState | None, key: Key, event: ev.Synced, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if state is None:
        # Opened elsewhere: the instance that saw the first message pinned the mode in the shared record.
        mode = event.mode or detect_mode(
            key.game_date, now, ModeHints(), policy.timezone, policy.overnight_cutover
        )
        state = _open(key, mode, now, policy, out)
    elif event.mode is not None and event.mode != state.mode and not state.settled:
        state = state.evolve(mode=event.mode)  # pinned elsewhere first (or explicitly): the shared pin wins
    for arrived in event.completions:
        if arrived.message_id not in state.seen:
            state = _remember(state, arrived, now, policy, out, received_here=False)
    shared = breakers.newer(state.breaker, event.breaker)
    if shared is not state.breaker:
        state = state.evolve(breaker=shared)
        if shared.state is BreakerState.OPEN and not state.settled:
            state = state.evolve(phase=Phase.BREAKER_OPEN)
        elif state.phase is Phase.BREAKER_OPEN:
            state = state.evolve(phase=Phase.COLLECTING)
    return state


def _on_restored(
    state: DateState | None, key: Key, event: ev.Restored, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if state is None and event.mode is not None:
        state = _open(key, event.mode, now, policy, out)
    state = _on_synced(state, key, ev.Synced(event.completions), now, policy, out)
    if event.published_at is not None and not state.settled:
        # Published by an earlier run (source and degradation are in the audit log, not in the store).
        published = Published(key.trigger_id, None, False, event.published_at)
        return state.evolve(phase=Phase.TRIGGERED, published=published)
    if state.settled or state.phase is Phase.BREAKER_OPEN:
        return state
    # Evaluated at once, like a timer would: inputs recorded before the restart may already be complete,
    # and the key must not wait for its next re-check (or deadline) to decide.
    return _evaluate_and_act(state, now, policy, out, cause="timer")


def _adopt_explicit_mode(state: DateState, event: ev.CompletionArrived, out: list[Effect]) -> DateState:
    stated = event.hints.processing_mode
    if stated is None or state.settled or stated == state.mode.value:
        return state
    mode = Mode(stated)
    out.append(PinMode(state.key, mode, explicit=True))
    return state.evolve(mode=mode, mode_explicit=True)


def _remember(
    state: DateState,
    event: ev.CompletionArrived,
    now: datetime,
    policy: Policy,
    out: list[Effect],
    received_here: bool = True,
) -> DateState:
    """Take a report into the state. Alerts and breaker counts belong to the instance that received the
    message (`received_here`); reports merged from the shared store were counted there already."""
    # One copy of the state for all that changes here (each copy is a step's worth of cost).
    seen = state.seen | {event.message_id}
    correlation_id = state.correlation_id or event.report.correlation_id
    if event.processor is None:
        if received_here and event.raw_name not in state.unknown:
            out.append(alert(state, "unknown_processor", Severity.WARNING, _unknown_text(state, event)))
        unknown = state.unknown | {event.raw_name}
        return state.evolve(seen=seen, correlation_id=correlation_id, unknown=unknown)
    current = state.reports.get(event.processor)
    if current is not None and not event.report.supersedes(current):
        # An older retry arriving late: the newer report stands.
        return state.evolve(seen=seen, correlation_id=correlation_id)
    state = state.evolve(
        seen=seen,
        correlation_id=correlation_id,
        reports={**state.reports, event.processor: event.report},
        last_input_at=_newest(state.last_input_at, event.report.timestamp),
    )
    if not received_here:
        return state
    return _count_toward_breaker(state, event.report.status, now, policy, out)


def _newest(last: datetime | None, timestamp: datetime) -> datetime:
    """max(last, timestamp), the first of equals as `max` does; `last` is None before the first report."""
    return timestamp if last is None or timestamp > last else last


def _count_toward_breaker(
    state: DateState, status: Status, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if status is Status.FAILED:
        return trip_breaker(state, now, policy, out, f"failed input for {state.key}")
    if state.breaker.state is not BreakerState.CLOSED:
        return state.evolve(breaker=breakers.record_success(state.breaker, now), phase=Phase.COLLECTING)
    return state


def _unknown_text(state: DateState, event: ev.CompletionArrived) -> str:
    return (
        f"processor {event.raw_name!r} on {state.key.transition} matches no policy name or alias; "
        "recorded, not counted"
    )


# --- timers ---------------------------------------------------------------------------------------------


def _on_tick(state: DateState, now: datetime, policy: Policy, out: list[Effect]) -> DateState:
    if state.settled or not policy.modes[state.mode].cascade:
        return state
    breaker = breakers.advance(state.breaker, now, policy.breaker)
    if breaker is not state.breaker:
        state = state.evolve(breaker=breaker)
    if state.breaker.state is BreakerState.OPEN:
        return state.evolve(phase=Phase.BREAKER_OPEN)
    trial = state.breaker.state is BreakerState.HALF_OPEN
    due_at = deadlines(state, policy)
    self_heal = not state.self_heal_done and due(due_at.self_heal_at, now)
    fallback = not state.fallback_done and due(due_at.fallback_at, now)
    retry = due(state.retry_at, now)
    recheck = state.phase is not Phase.FAILED and due(state.next_check_at, now)
    if not (trial or self_heal or fallback or retry or recheck):
        return state  # woken early (e.g. a timer set before a policy reload): nothing is due yet
    state, result = _evaluate(state, now, policy, out, cause="timer")
    if result.decision.proceeds:
        return begin_publish(
            state, Source.CASCADE, result.decision is Decision.PROCEED_DEGRADED, result, now, policy, out
        )
    if self_heal:
        return _self_heal(state, result, now, policy, out)
    if fallback:
        return _fallback(state, result, now, policy, out)
    if retry and state.attempt is not None:
        return begin_publish(state, state.attempt.source, state.attempt.degraded, result, now, policy, out)
    return _settle_non_proceeding(state, result, out)


def _criticals_ok(result: CheckResult) -> bool:
    return not result.missing_critical and not result.failed_critical


def _fallback(
    state: DateState, result: CheckResult, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    mode = policy.modes[state.mode]
    state = state.evolve(fallback_done=True)
    if _criticals_ok(result) and result.completeness >= mode.completeness:
        return begin_publish(state, Source.FALLBACK, True, result, now, policy, out)
    low = mode.alert_below is not None and result.completeness < mode.alert_below
    text = f"{_nothing(state)}fallback deadline passed for {state.key} ({state.mode}): {_summary(result)}"
    out.append(alert(state, "fallback_deadline_missed", Severity.CRITICAL if low else Severity.WARNING, text))
    return _settle_non_proceeding(state, result, out)


def _self_heal(
    state: DateState, result: CheckResult, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    state = state.evolve(fallback_done=True, self_heal_done=True)
    out.append(
        alert(
            state,
            "self_heal",
            Severity.WARNING,
            f"{_nothing(state)}self-heal deadline reached for {state.key}: {_summary(result)}",
        )
    )
    if _criticals_ok(result):
        return begin_publish(state, Source.SELF_HEAL, True, result, now, policy, out)
    text = f"{_nothing(state)}{state.key} cannot proceed without its critical inputs: {_summary(result)}"
    out.append(alert(state, "manual_intervention_required", Severity.CRITICAL, text))
    state = state.evolve(phase=Phase.FAILED, last=result)
    out.append(ended(state, "failed", now))
    return state


def _nothing(state: DateState) -> str:
    """Leads an alert for a key the calendar opened that has had no completion at all (a silent game day):
    the date is what the operator must chase, not a list of missing processors."""
    if not state.expected or state.reports or state.unknown:
        return ""
    return f"no completion at all for {state.key.game_date} ({state.key.transition}): "


def _summary(result: CheckResult) -> str:
    missing = ", ".join(result.missing) or "none"
    return f"completeness {result.completeness:.3f}, quality {result.quality_score:.3f}, missing: {missing}"


# --- operators ------------------------------------------------------------------------------------------


def _on_reset(state: DateState, now: datetime, policy: Policy, out: list[Effect]) -> DateState:
    state = state.evolve(breaker=breakers.record_success(state.breaker, now), publish_failures=0)
    if state.settled:
        return state
    return _evaluate_and_act(state.evolve(phase=Phase.COLLECTING), now, policy, out, cause="operator")


def _on_force(
    state: DateState, event: ev.ForceTrigger, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if state.settled:
        trigger = state.published.trigger_id if state.published else state.key.trigger_id
        text = f"force by {event.operator} ignored: {state.key} already {state.phase.value} ({trigger})"
        out.append(alert(state, "force_ignored", Severity.INFO, text))
        return state
    state, result = _evaluate(state, now, policy, out, cause="operator")
    degraded = result.decision is not Decision.PROCEED
    return begin_publish(state, Source.MANUAL, degraded, result, now, policy, out)


# --- evaluation -----------------------------------------------------------------------------------------


def _evaluate(
    state: DateState, now: datetime, policy: Policy, out: list[Effect], cause: Cause
) -> tuple[DateState, CheckResult]:
    transition = policy.transitions[state.key.transition]
    mode = policy.modes[state.mode]
    result = check(state.reports, transition.expectation(state.mode), mode, policy, now)
    if not mode.cascade:
        result = replace(
            result, reasons=(*result.reasons, f"{state.mode.value} mode: recorded, never cascades")
        )
    out.append(EmitDecision(state.key, state.mode, result, cause))
    return state.evolve(last=result, next_check_at=_next_check(state.mode, now, policy)), result


def _evaluate_and_act(
    state: DateState, now: datetime, policy: Policy, out: list[Effect], cause: Cause
) -> DateState:
    state, result = _evaluate(state, now, policy, out, cause)
    if not policy.modes[state.mode].cascade:
        return state.evolve(phase=Phase.RECORDING)
    if result.decision.proceeds:
        degraded = result.decision is Decision.PROCEED_DEGRADED
        return begin_publish(state, Source.CASCADE, degraded, result, now, policy, out)
    return _settle_non_proceeding(state, result, out)


def _settle_non_proceeding(state: DateState, result: CheckResult, out: list[Effect]) -> DateState:
    if result.decision is Decision.FAIL:
        if state.phase is Phase.FAILED:
            return state
        text = f"{state.key}: {'; '.join(result.reasons)}"
        out.append(alert(state, "critical_input_failed", Severity.ERROR, text))
        return state.evolve(phase=Phase.FAILED)
    # Mostly collecting already: no copy then.
    return state if state.phase is Phase.COLLECTING else state.evolve(phase=Phase.COLLECTING)


def _next_check(mode: Mode, now: datetime, policy: Policy) -> datetime | None:
    every = policy.modes[mode].recheck_every_s
    return now + timedelta(seconds=every) if every else None


def _reschedule(state: DateState, policy: Policy, out: list[Effect]) -> tuple[DateState, tuple[Effect, ...]]:
    wake = wake_at(state, policy)
    if wake != state.wake_at:
        out.append(SetTimer(state.key, wake))
        state = state.evolve(wake_at=wake)
    return state, tuple(out)
