"""The shell around the pure core: feeds events into `router.machine.step` and carries out its effects.

One instance of this class serves replay (in-memory adapters, virtual clock) and the daemon (real adapters,
system clock) alike, so what replay shows is what production does.

Ordering rules that matter:
- Durable effects (pin the mode, record the completion) run *before* the new state is committed. If the
  store fails, the error propagates (the caller nacks), the cached state is unchanged, and the redelivery is
  processed as new — an ack is only ever given for a recorded completion.
- Events for one key are handled one at a time (a lock per key); publish outcomes are fed back to the machine
  under the same lock, so nothing interleaves between a publish and its confirmation.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import anyio

from adapters.clock import Clock
from adapters.errors import PublishError, TransientError
from adapters.ports import AuditRow, AuditSink, Publisher, StateStore
from ops import audit_rows
from ops.alerting import AlertGate
from ops.completion_docs import completion_id, from_document, to_document
from policies.breaker import newer
from policies.model import Policy
from router import events as ev
from router.effects import (
    DuplicateIgnored,
    Effect,
    EmitDecision,
    OpenDownstream,
    PinMode,
    PublishTrigger,
    RaiseAlert,
    RecordCompletion,
    SetTimer,
    ShareBreaker,
    TransitionEnded,
)
from router.intake import Rejected, accept
from router.keys import Key
from router.machine import step
from router.state import DateState

log = logging.getLogger("cascade.engine")

# Written to the state store before the new state is committed (see the module docstring).
DURABLE = (RecordCompletion, PinMode)
# Events decided on shared inputs: the completions other instances recorded are merged in first.
SYNC_BEFORE = (ev.CompletionArrived, ev.Tick, ev.ForceTrigger)
# Talk to the outside world once the new state is committed: topics, the shared breaker.
OUTBOUND = (PublishTrigger, RaiseAlert, ShareBreaker, TransitionEnded)


class Delivery(StrEnum):
    ROUTED = "routed"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    instance_id: str = "local"
    dead_letter_topic: str = "cascade-dead-letter"
    alert_topic: str = "nba-slo-violation"
    # Where each (game_date, transition) outcome is announced (triggered / degraded / failed); None: nowhere.
    status_topic: str | None = "nba-orchestration-status"
    claim_lease_s: float = 60.0
    # Read what other instances recorded before each decision. Off only where this engine is provably the
    # only writer of its store (replay on a private in-memory store): then there is nothing to merge.
    merge_shared_state: bool = True


FollowUp = tuple[Key, ev.Event]
# Told about every confirmed trigger publish, with the seconds since its newest input (None: no input).
TriggerObserver = Callable[[PublishTrigger, float | None], None]


class Engine:
    def __init__(
        self,
        policy: Callable[[], Policy],
        store: StateStore,
        publisher: Publisher,
        audit: AuditSink,
        clock: Clock,
        config: EngineConfig = EngineConfig(),
        on_trigger: TriggerObserver | None = None,
    ) -> None:
        self._policy = policy
        self._on_trigger = on_trigger
        self._store = store
        self._publisher = publisher
        self._audit = audit
        self._clock = clock
        self._config = config
        self.states: dict[Key, DateState] = {}
        self._timers: list[tuple[datetime, int, Key]] = []
        self._seq = itertools.count()
        # fast_acquire: an uncontended lock does not yield to the event loop (most keys are uncontended).
        self._locks: defaultdict[Key, anyio.Lock] = defaultdict(lambda: anyio.Lock(fast_acquire=True))
        self._alerts = AlertGate()
        self.duplicates = 0

    # --- inputs -----------------------------------------------------------------------------------------

    async def deliver(
        self, topic: str, message_id: str, data: bytes, attributes: Mapping[str, str]
    ) -> Delivery:
        """Route one delivered message. Raises `TransientError` when it must be redelivered (nack)."""
        policy = self._policy()
        accepted = accept(topic, message_id, data, policy)
        if isinstance(accepted, Rejected):
            await self._dead_letter(topic, message_id, data, attributes, accepted.reason)
            return Delivery.DEAD_LETTERED
        before = self.duplicates
        await self.submit(accepted.key, accepted.event)
        return Delivery.DUPLICATE if self.duplicates > before else Delivery.ROUTED

    async def submit(self, key: Key, event: ev.Event) -> None:
        """Feed one event (message, operator command, tick) and everything it causes downstream."""
        pending: deque[FollowUp] = deque([(key, event)])
        while pending:
            target, item = pending.popleft()
            async with self._locks[target]:
                pending.extend(await self._apply_all(target, item))

    async def rebuild(self, since: date) -> int:
        """Load every key the store knows with a game date from `since` (at start, before pulling), so
        timers of dates that get no further message still fire. Returns how many keys were restored."""
        records = await self._store.recent(since)
        for record in records:
            documents = await self._store.completions(record.key)
            restored = tuple(from_document(d) for d in documents)
            await self.submit(record.key, ev.Restored(record.mode, restored, record.published_at))
        return len(records)

    async def fire_due(self) -> int:
        """Run every timer that is due now; returns how many keys were ticked."""
        now = self._clock.now()
        fired = 0
        while self._timers and self._timers[0][0] <= now:
            at, _, key = heapq.heappop(self._timers)
            state = self.states.get(key)
            if state is None or state.wake_at != at:
                continue  # superseded by a later SetTimer for the same key
            await self.submit(key, ev.Tick())
            fired += 1
        await self._flush_alert_summaries(now)
        return fired

    def next_due(self) -> datetime | None:
        """The earliest live timer (stale heap entries are dropped here)."""
        while self._timers:
            at, _, key = self._timers[0]
            state = self.states.get(key)
            if state is not None and state.wake_at == at:
                break
            heapq.heappop(self._timers)
        candidates = [self._timers[0][0]] if self._timers else []
        summary_at = self._alerts.next_flush_at(self._policy().alerts)
        if summary_at is not None:
            candidates.append(summary_at)
        return min(candidates, default=None)

    # --- the step ---------------------------------------------------------------------------------------

    async def _apply_all(self, key: Key, event: ev.Event) -> list[FollowUp]:
        """Apply `event` and the publish outcomes it produces for the same key; return work for other keys."""
        later: list[FollowUp] = []
        same_key: deque[ev.Event] = deque([event])
        while same_key:
            for target, follow in await self._apply(key, same_key.popleft()):
                (same_key.append(follow) if target == key else later.append((target, follow)))
        return later

    async def _apply(self, key: Key, event: ev.Event) -> list[FollowUp]:
        policy = self._policy()
        now = self._clock.now()
        follow = await self._sync(key, event, now, policy)
        return follow + await self._step(key, event, now, policy)

    async def _sync(self, key: Key, event: ev.Event, now: datetime, policy: Policy) -> list[FollowUp]:
        """Merge what other instances recorded for `key` before deciding on it (see `ev.Synced`)."""
        state = self.states.get(key)
        if not self._config.merge_shared_state or not isinstance(event, SYNC_BEFORE):
            return []
        if state is not None and state.settled:
            return []
        if state is None and not isinstance(event, ev.CompletionArrived):
            return []
        try:
            documents = await self._store.completions(key)
            shared = await self._store.shared_breaker(key)
        except TransientError:
            if isinstance(event, ev.CompletionArrived):
                raise  # nack: decide on this message once the store answers again
            log.warning("could not read %s from the state store; deciding on local state", key)
            return []
        known = state.seen if state is not None else frozenset()
        own = event.message_id if isinstance(event, ev.CompletionArrived) else None
        fresh = tuple(
            from_document(d) for d in documents if d["message_id"] not in known and d["message_id"] != own
        )
        breaker_news = state is not None and newer(state.breaker, shared) is not state.breaker
        if not fresh and not breaker_news:
            return []
        return await self._step(key, ev.Synced(fresh, shared), now, policy)

    async def _step(self, key: Key, event: ev.Event, now: datetime, policy: Policy) -> list[FollowUp]:
        result = step(self.states.get(key), key, event, now, policy)
        follow: list[FollowUp] = []
        for effect in result.effects:
            if isinstance(effect, DURABLE):
                follow.extend(await self._durable(effect, now))
        if result.state is not None:
            self.states[key] = result.state
        rows: list[AuditRow] = []
        for effect in result.effects:
            if isinstance(effect, OUTBOUND):
                follow.extend(await self._send(effect, now, policy, rows))
            elif not isinstance(effect, DURABLE):
                follow.extend(self._note(effect, now, rows))
        if rows:
            await self._audit.write(rows)
        return follow

    async def _durable(self, effect: RecordCompletion | PinMode, now: datetime) -> list[FollowUp]:
        if isinstance(effect, RecordCompletion):
            await self._store.record_completion(effect.key, completion_id(effect), to_document(effect), now)
            return []
        pinned = await self._store.pin_mode(effect.key, effect.mode, effect.explicit, now)
        return [] if pinned == effect.mode else [(effect.key, ev.ModeAdopted(pinned))]

    async def _send(
        self,
        effect: PublishTrigger | RaiseAlert | ShareBreaker | TransitionEnded,
        now: datetime,
        policy: Policy,
        rows: list[AuditRow],
    ) -> list[FollowUp]:
        if isinstance(effect, RaiseAlert):
            await self._raise(effect, now, policy, rows)
            return []
        if isinstance(effect, TransitionEnded):
            row = audit_rows.phase_row(effect)
            rows.append(row)
            if self._config.status_topic is not None:
                await self._notify(self._config.status_topic, row, {"outcome": effect.outcome})
            return []
        if isinstance(effect, ShareBreaker):
            try:
                await self._store.share_breaker(effect.key, effect.breaker, now)
            except TransientError as exc:
                # This instance still acts on its own breaker; the others learn at the next change.
                log.warning("could not share the breaker of %s: %s", effect.key, exc)
            return []
        return [(effect.key, await self._publish(effect, now, rows))]

    def _note(self, effect: Effect, now: datetime, rows: list[AuditRow]) -> list[FollowUp]:
        """The effects that need no I/O: audit rows, timers, follow-up events, counters."""
        match effect:
            case EmitDecision():
                rows.append(audit_rows.decision_row(now, effect))
            case SetTimer(at=at) if at is not None:
                heapq.heappush(self._timers, (at, next(self._seq), effect.key))
            case OpenDownstream():
                return [(effect.key, ev.OpenedByUpstream(effect.mode, effect.correlation_id))]
            case DuplicateIgnored():
                self.duplicates += 1
        return []

    # --- publishing: claim, publish, confirm ------------------------------------------------------------

    async def _publish(self, effect: PublishTrigger, now: datetime, rows: list[AuditRow]) -> ev.Event:
        """Claim, publish every message, mark published. Never raises: the machine hears every outcome."""
        instance = self._config.instance_id
        try:
            claim = await self._store.claim_trigger(
                effect.key, effect.trigger_id, instance, now, self._config.claim_lease_s
            )
        except TransientError as exc:
            return ev.PublishFailed(effect.trigger_id, f"could not claim: {exc}")
        if claim.outcome == "published":
            return ev.AlreadyPublished(effect.trigger_id, claim.published_at)
        if claim.outcome == "held":
            assert claim.lease_until is not None
            return ev.ClaimHeldElsewhere(effect.trigger_id, claim.lease_until)
        try:
            for message in effect.messages:
                body = audit_rows.encode(message.data)
                await self._publisher.publish(effect.topic, body, message.attributes, message.ordering_key)
        except PublishError as exc:
            await self._release(effect)
            return ev.PublishFailed(effect.trigger_id, str(exc))
        published_at = self._clock.now()
        rows.extend(audit_rows.trigger_row(published_at, effect, m) for m in effect.messages)
        self._announce(effect, published_at)
        try:
            await self._store.mark_published(effect.key, effect.trigger_id, instance, published_at)
        except TransientError as exc:
            # The messages are out. If the mark is lost, the claim's lease expires and another instance may
            # publish again with the same trigger_id: at-least-once, never a second trigger_id.
            log.warning("published %s but could not mark it: %s", effect.trigger_id, exc)
        return ev.PublishSucceeded(effect.trigger_id, published_at)

    def _announce(self, effect: PublishTrigger, published_at: datetime) -> None:
        state = self.states.get(effect.key)
        last_input_at = state.last_input_at if state is not None else None
        log.info(
            "published trigger %s to %s (%s%s)",
            effect.trigger_id,
            effect.topic,
            effect.source.value,
            ", degraded" if effect.degraded else "",
            extra={
                "game_date": effect.key.game_date.isoformat(),
                "transition": effect.key.transition,
                "trigger_id": effect.trigger_id,
                "correlation_id": state.correlation_id if state is not None else None,
            },
        )
        if self._on_trigger is not None:
            latency_s = (published_at - last_input_at).total_seconds() if last_input_at else None
            self._on_trigger(effect, latency_s)

    def forget(self, before: date) -> int:
        """Drop settled keys with a game date before `before` (their record stays in the store); bounds the
        memory of a long-running router. Keys still waiting are kept whatever their age."""
        old = [k for k, s in self.states.items() if k.game_date < before and s.settled]
        for key in old:
            del self.states[key]
            self._locks.pop(key, None)
        return len(old)

    async def _release(self, effect: PublishTrigger) -> None:
        try:
            await self._store.release_claim(effect.key, effect.trigger_id, self._config.instance_id)
        except TransientError as exc:
            # The lease runs out by itself; the retry (ours or another instance's) re-claims then.
            log.warning("could not release the claim on %s: %s", effect.trigger_id, exc)

    # --- alerts and dead letters ------------------------------------------------------------------------

    async def _raise(self, effect: RaiseAlert, now: datetime, policy: Policy, rows: list[AuditRow]) -> None:
        await self._flush_alert_summaries(now)
        if not self._alerts.admit(effect.signature, now, policy.alerts):
            return
        rows.append(audit_rows.alert_row(now, effect))
        await self._send_alert(audit_rows.alert_row(now, effect))

    async def _flush_alert_summaries(self, now: datetime) -> None:
        rows = [audit_rows.alert_row(now, s) for s in self._alerts.summaries(now, self._policy().alerts)]
        for row in rows:
            await self._send_alert(row)
        if rows:
            await self._audit.write(rows)

    async def _send_alert(self, row: Mapping[str, Any]) -> None:
        level = logging.CRITICAL if row["severity"] == "CRITICAL" else logging.WARNING
        fields = {"game_date": row["game_date"], "transition": row["transition"], "alert": row["alert"]}
        log.log(level, "alert %s: %s", row["alert"], row["message"], extra=fields)
        await self._notify(self._config.alert_topic, row, {"alert": row["alert"]})

    async def _notify(self, topic: str, row: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        # An alert or status that cannot be sent must not stop routing; it stays in the audit log either way.
        try:
            await self._publisher.publish(topic, audit_rows.encode(row), attributes)
        except PublishError as exc:
            log.warning("%s not sent to %s (kept in the audit log): %s", row["kind"], topic, exc)

    async def _dead_letter(
        self, topic: str, message_id: str, data: bytes, attributes: Mapping[str, str], reason: str
    ) -> None:
        now = self._clock.now()
        letter_attributes = {
            **attributes,
            "source_topic": topic,
            "message_id": message_id,
            "reason": reason[:1024],
        }
        # A failed dead-letter publish propagates: the message is nacked and redelivered, never lost.
        await self._publisher.publish(self._config.dead_letter_topic, data, letter_attributes)
        await self._audit.write([audit_rows.dead_letter_row(now, topic, message_id, reason)])
