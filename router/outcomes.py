"""Starting a trigger and absorbing what the shell reports back about it.

A trigger counts as done only after the shell confirms the publish (the old system set its flag first and a
failed publish orphaned the day). A failed publish is retried with backoff, counts toward the breaker, and
leaves the key collecting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from policies import breaker as breakers
from policies.decision import CheckResult
from policies.model import Policy
from router import events as ev
from router.effects import (
    Effect,
    OpenDownstream,
    Outcome,
    PublishTrigger,
    RaiseAlert,
    Severity,
    Source,
    TransitionEnded,
)
from router.keys import Key
from router.payloads import build_messages
from router.state import Attempt, DateState, Phase, Published


def alert(state: DateState, name: str, severity: Severity, message: str) -> RaiseAlert:
    return RaiseAlert(name, severity, state.key.game_date, state.key.transition, message)


def begin_publish(
    state: DateState,
    source: Source,
    degraded: bool,
    result: CheckResult,
    now: datetime,
    policy: Policy,
    out: list[Effect],
) -> DateState:
    trigger_id = state.key.trigger_id
    transition = policy.transitions[state.key.transition]
    messages = build_messages(state, policy, source, degraded, result, trigger_id)
    out.append(
        PublishTrigger(state.key, trigger_id, transition.publishes_to, state.mode, source, degraded, messages)
    )
    attempt = Attempt(trigger_id, source, degraded, now)
    return state.evolve(phase=Phase.PUBLISHING, attempt=attempt, retry_at=None)


def on_published(
    state: DateState, trigger_id: str, published_at: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if state.attempt is None or state.attempt.trigger_id != trigger_id or state.phase.is_triggered:
        return state  # a stale or repeated confirmation: the first one already settled the key
    attempt = state.attempt
    published = Published(trigger_id, attempt.source, attempt.degraded, published_at)
    phase = Phase.TRIGGERED_DEGRADED if attempt.degraded else Phase.TRIGGERED
    state = state.evolve(
        phase=phase, published=published, breaker=breakers.record_success(state.breaker, published_at)
    )
    out.append(ended(state, "triggered_degraded" if attempt.degraded else "triggered", published_at))
    _open_next(state, policy, out)
    return state


def on_already_published(
    state: DateState, event: ev.AlreadyPublished, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    if state.phase.is_triggered:
        return state
    degraded = state.attempt.degraded if state.attempt else False
    source = state.attempt.source if state.attempt else None
    published = Published(event.trigger_id, source, degraded, event.published_at or now)
    phase = Phase.TRIGGERED_DEGRADED if degraded else Phase.TRIGGERED
    state = state.evolve(phase=phase, published=published)
    _open_next(state, policy, out)
    return state


def on_publish_failed(
    state: DateState, event: ev.PublishFailed, now: datetime, policy: Policy, out: list[Effect]
) -> DateState:
    attempt = state.attempt
    if state.phase is not Phase.PUBLISHING or attempt is None:
        return state
    failures = state.publish_failures + 1
    retry_at = now + timedelta(seconds=policy.publish_retry.delay_s(failures))
    state = state.evolve(phase=Phase.COLLECTING, publish_failures=failures, retry_at=retry_at)
    text = f"publishing {attempt.trigger_id} failed (attempt {failures}): {event.reason}"
    out.append(alert(state, "publish_failed", Severity.WARNING, text))
    return trip_breaker(state, now, policy, out, f"publish failures for {state.key}")


def on_claim_held(state: DateState, event: ev.ClaimHeldElsewhere) -> DateState:
    if state.phase is not Phase.PUBLISHING:
        return state
    # Another instance is publishing this very trigger; look again once its lease has run out.
    return state.evolve(phase=Phase.COLLECTING, retry_at=event.lease_until)


def trip_breaker(state: DateState, now: datetime, policy: Policy, out: list[Effect], why: str) -> DateState:
    updated, opened = breakers.record_failure(state.breaker, now, policy.breaker)
    state = state.evolve(breaker=updated)
    if opened:
        text = f"circuit open for {state.key} after {updated.failures} failures ({why}); retries paused"
        out.append(alert(state, "circuit_open", Severity.ERROR, text))
    if updated.state is breakers.BreakerState.OPEN:
        state = state.evolve(phase=Phase.BREAKER_OPEN)
    return state


def _open_next(state: DateState, policy: Policy, out: list[Effect]) -> None:
    following = policy.transitions[state.key.transition].next
    if following is not None:
        nxt = Key(state.key.game_date, following)
        out.append(OpenDownstream(nxt, state.mode, state.correlation_id))


def ended(state: DateState, outcome: Outcome, at: datetime) -> TransitionEnded:
    result = state.last
    return TransitionEnded(
        key=state.key,
        mode=state.mode,
        outcome=outcome,
        source=state.attempt.source if state.attempt else None,
        trigger_id=state.attempt.trigger_id if state.attempt else None,
        opened_at=state.opened_at,
        ended_at=at,
        completeness=result.completeness if result else 0.0,
        processors_reported=len(state.reports),
        missing=result.missing if result else (),
    )
