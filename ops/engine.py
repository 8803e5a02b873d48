"""The shell around the pure core: feeds events into the machine and carries out its effects.

One instance of this class serves replay (in-memory adapters, virtual clock) and the daemon (real adapters,
system clock) alike, so what replay shows is what production does.

Every event for a key is one store update (`router.shared_step`): merge what other instances recorded,
step, fold the durable effects (record, pin, claim, mark, share the breaker) into the key's shared record,
written once, conditionally. Only after that write landed is the new state committed here and are the
outbound effects sent (trigger, alerts, status) — so an ack is only ever given for a recorded completion,
and a trigger only ever published under a claim. If the store fails on a completion, the error propagates
(the caller nacks) and nothing here changed; for other events (timers, publish outcomes, operators) the
step runs on local state, because a deadline must fire even while the store is down. Once the store has
failed for the policy's `state_store.outage_after_s`, the instance routes on its own (`ops.store_outage`):
completions are journaled locally and acked, triggers published under a local claim, and the journal is
written into the store when a probe finds it answering again.

Events for one key are handled one at a time (a lock per key). A publish outcome is fed back to the machine
under the same lock, so nothing interleaves between a publish and its confirmation. Work for other keys (a
downstream key opening) joins the one queue of (key, event) and runs after.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

import anyio

from adapters.clock import Clock
from adapters.errors import PermanentInputError, TransientError
from adapters.memory import MemoryJournal
from adapters.ports import AuditRow, AuditSink, Journal, Publisher, StateStore
from adapters.resource_names import DEFAULT_NAMES, ResourceNames
from ops import audit_rows
from ops.alerting import Notifier
from ops.day_watch import DayWatch
from ops.expected_days import ExpectedDays
from ops.store_outage import LocalRouting, began_alert, recovered_alert
from ops.timer_queue import TimerQueue
from ops.trigger_sender import TriggerObserver, TriggerSender
from policies.calendar import first_transitions
from policies.model import Policy
from router import events as ev
from router.effects import (
    DuplicateIgnored,
    EmitDecision,
    OpenDownstream,
    PublishTrigger,
    RaiseAlert,
    RecordCompletion,
    SetTimer,
    TransitionEnded,
)
from router.intake import Rejected, Rejection, accept
from router.keys import Key
from router.machine import recorded, step
from router.records import body_of
from router.shared import ClaimState, SharedKey
from router.shared_step import Decided, Identity, decide
from router.state import DateState
from views.watch import Verdict

log = logging.getLogger("cascade.engine")

# Decisions that write nothing must still see every instance's inputs: read the record for them.
READ_FRESH = (ev.Tick, ev.ForceTrigger, ev.ResetBreaker, ev.Restored, ev.ExpectedDayStarted)

__all__ = ["Delivery", "Engine", "EngineConfig", "TriggerObserver"]


class Delivery(StrEnum):
    ROUTED = "routed"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    instance_id: str = "local"
    # The dead-letter, alert and status topics (where each (game_date, transition) outcome is announced).
    names: ResourceNames = DEFAULT_NAMES
    claim_lease_s: float = 60.0
    # False only where one task feeds the engine one event at a time (replay): no per-key locks needed.
    concurrent: bool = True
    # A redelivered completion found already recorded gets its input row again (same insert_id, see
    # `adapters.bigquery_schema.insert_id`): the process that recorded it may have been killed before the
    # row was durable. Off in replay, where nothing is killed and the timeline stays one row per input.
    reaudit_redeliveries: bool = False


FollowUp = tuple[Key, ev.Event]


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
        watch: DayWatch | None = None,
        journal: Journal | None = None,
    ) -> None:
        self._policy = policy
        self._store = store
        self._audit = audit
        self._clock = clock
        self._who = Identity(config.instance_id, config.claim_lease_s)
        self.local = LocalRouting(journal if journal is not None else MemoryJournal(), self._who)
        self._sender = TriggerSender(publisher, clock, on_trigger)
        self._notifier = Notifier(
            publisher,
            audit,
            config.names.alert_topic,
            config.names.status_topic,
            config.names.dead_letter_topic,
        )
        self._timers = TimerQueue(self._wants_to_wake)
        self.states: dict[Key, DateState] = {}
        # fast_acquire: an uncontended lock does not yield to the event loop (most keys are uncontended).
        self._locks: defaultdict[Key, anyio.Lock] = defaultdict(lambda: anyio.Lock(fast_acquire=True))
        self._concurrent = config.concurrent
        self._reaudit = config.reaudit_redeliveries
        self.watch = watch
        # The game-day calendar: None until replay gives its span or the daemon first follows the clock.
        self.expected: ExpectedDays | None = None
        self._rebuild_since: date | None = None  # a rebuild the store did not answer at start

    # --- inputs -----------------------------------------------------------------------------------------

    async def deliver(
        self, topic: str, message_id: str, data: bytes, attributes: Mapping[str, str]
    ) -> Delivery:
        """Route one delivered message; the outcome is decided by the call that routed or refused it. Raises
        `TransientError` when it must be redelivered (nack), including when its dead letter could not be
        published."""
        accepted = accept(topic, message_id, data, self._policy())
        if isinstance(accepted, Rejected):
            letter = (topic, message_id, data, attributes, accepted.category, accepted.reason)
            await self._notifier.dead_letter(*letter, self._clock.now())
            return Delivery.DEAD_LETTERED
        pending: deque[FollowUp] = deque()
        try:
            outcome = await self._handle(accepted.key, accepted.event, pending)
        except PermanentInputError as exc:
            # The store refused the whole update (nothing recorded, nothing changed here) and always will:
            # a redelivery cannot succeed, so dead-letter it now instead of after Pub/Sub's retries.
            letter = (topic, message_id, data, attributes, Rejection.UNSTORABLE, str(exc))
            await self._notifier.dead_letter(*letter, self._clock.now())
            return Delivery.DEAD_LETTERED
        await self._follow(pending)
        return outcome

    async def submit(self, key: Key, event: ev.Event) -> Delivery:
        """Feed one event (message, operator command, tick) and everything it causes for other keys; says
        whether the event itself was routed or was a duplicate."""
        pending: deque[FollowUp] = deque()
        outcome = await self._handle(key, event, pending)
        await self._follow(pending)
        return outcome

    async def _follow(self, pending: deque[FollowUp]) -> None:
        """What an event caused for other keys (a downstream key opening), in order."""
        while pending:
            await self._handle(*pending.popleft(), pending)

    async def rebuild(self, since: date) -> int:
        """Load every key the store knows with a game date from `since` (at start, before pulling), so
        timers of dates that get no further message still fire. Its recorded inputs come with the merge of
        the shared record. Returns how many keys were restored."""
        records = await self._store.recent(since)
        for record in records:
            await self.submit(record.key, ev.Restored(record.mode, (), record.published_at))
        return len(records)

    async def recover(self, since: date) -> int:
        """At start: a journal left by an outage is written into the store first; if the store does not
        answer, the outage goes on from the journal (its keys restored from it). Then `rebuild`; a store that
        does not answer leaves it to the first successful probe. Returns how many keys were restored."""
        now, policy = self._clock.now(), self._policy()
        journaled = self.local.pending()
        if journaled:
            try:
                await self.local.reconcile(self._store, now)
                log.info("wrote %d journaled keys of an earlier outage into the state store", len(journaled))
            except TransientError as exc:
                log.warning("state store unavailable at start (%s): the outage goes on from the journal", exc)
                self.local.health.begin_now(now, policy.state_store)
                self.local.adopt(journaled)
                self._rebuild_since = since  # the keys only the store knows: once it answers
                for key, entry in journaled.items():
                    published = (
                        entry.record.published_at
                        if entry.record.claim_state is ClaimState.PUBLISHED
                        else None
                    )
                    await self.submit(key, ev.Restored(entry.record.mode, (), published))
                return len(journaled)
        try:
            return await self.rebuild(since)
        except TransientError as exc:
            log.warning("state store unavailable at start (%s): keys are restored when it answers", exc)
            self.local.health.failed(now, policy.state_store)
            self._rebuild_since = since
            return 0

    async def probe_store(self) -> bool:
        """In the outage, every `state_store.probe_every_s`: try the store by writing the journal into it;
        when it answers the outage ends (alerted once each way). Returns whether the outage ended now."""
        now, policy = self._clock.now(), self._policy()
        health = self.local.health
        if not health.probe_due(now):
            return False
        since = health.outage_since
        try:
            keys = await self.local.reconcile(self._store, now)
        except TransientError as exc:
            health.failed(now, policy.state_store)
            log.warning("state store still unavailable: %s", exc)
            return False
        await self._alert_alone(recovered_alert(since, len(keys)), now, policy)
        if self._rebuild_since is not None:
            await self.rebuild(self._rebuild_since)
            self._rebuild_since = None
        # What other instances recorded meanwhile comes in with a fresh read, and is decided at once.
        for key in keys:
            state = self.states.get(key)
            if state is not None and not state.settled:
                await self.submit(key, ev.Restored(None, (), None))
        return True

    async def follow_calendar(self) -> list[date]:
        """Open the first transition's key of every expected game day whose opening instant has passed and
        that has no key yet, so its deadlines and alerts run without any message; and alert once when no
        completion arrived for the policy's silence. Returns the game dates looked at (the daemon calls
        this from its tick loop; replay through `fire_due`, once it set `expected`)."""
        if self.expected is None:
            self.expected = ExpectedDays()  # the daemon: from yesterday, following the clock
        now, policy = self._clock.now(), self._policy()
        days = self.expected.due(now, policy)
        for day in days:
            for transition in first_transitions(policy):
                key = Key(day, transition)
                if key not in self.states:
                    await self.submit(key, ev.ExpectedDayStarted())
        silence = self.expected.silence_alert(now, policy)
        if silence is not None:
            await self._alert_alone(silence, now, policy)
        return days

    async def _alert_alone(self, alert: RaiseAlert, now: datetime, policy: Policy) -> None:
        """An alert about no key (a silence, the state store): rate-limited and audited like any other."""
        rows: list[AuditRow] = []
        await self._notifier.alert(alert, now, policy.alerts, rows, audit_rows.AlertContext())
        if rows:
            await self._audit.write(rows)

    async def fire_due(self, probe: bool = True) -> int:
        """Run every timer that is due now; returns how many keys were ticked. `probe`: also try the store
        when in the outage (the daemon probes from a task of its own: a stopped store's timeout must not hold
        the timers back)."""
        if self.expected is not None:
            await self.follow_calendar()
        if probe:
            await self.probe_store()
        now = self._clock.now()
        fired = 0
        while (key := self._timers.pop_due(now)) is not None:
            await self.submit(key, ev.Tick())
            fired += 1
        policy = self._policy()
        if self.watch is not None:
            await self._raise(self.watch.due(now, policy), now, policy)
        await self._notifier.flush_summaries(now, policy.alerts)
        return fired

    async def sweep(self) -> None:
        """Re-assess every open date now (the daemon does this every minute: an ETA moves with time)."""
        if self.watch is not None:
            now, policy = self._clock.now(), self._policy()
            await self._raise(self.watch.sweep(now, policy), now, policy)

    def next_due(self) -> datetime | None:
        """The earliest live timer, when held-back alerts are next summarised, or a date may be stuck."""
        policy = self._policy()
        summary_at = self._notifier.gate.next_flush_at(policy.alerts)
        watch_at = self.watch.next_due(policy) if self.watch is not None else None
        calendar_at = self.expected.next_at(policy) if self.expected is not None else None
        if calendar_at is not None:
            calendar_at = max(calendar_at, self._clock.now())  # a day due before replay began opens at once
        probe_at = self.local.health.next_probe_at if self.local.active else None
        candidates = (self._timers.next_at(), summary_at, watch_at, calendar_at, probe_at)
        return min((at for at in candidates if at is not None), default=None)

    def forget(self, before: date) -> int:
        """Drop settled keys with a game date before `before` (their record stays in the store); bounds the
        memory of a long-running router. Keys still waiting are kept whatever their age."""
        old = [k for k, s in self.states.items() if k.game_date < before and s.settled]
        for key in old:
            del self.states[key]
            self._locks.pop(key, None)
        return len(old)

    # --- one key ----------------------------------------------------------------------------------------

    async def _handle(self, key: Key, event: ev.Event, pending: deque[FollowUp]) -> Delivery:
        """`event`, then the outcome of the publish it started, under the key's lock."""
        async with self._locks[key] if self._concurrent else _ALONE:
            decided, follow_up = await self._once(key, event, pending)
            while follow_up is not None:
                _, follow_up = await self._once(key, follow_up, pending)
        return _delivery(event, decided)

    async def _once(
        self, key: Key, event: ev.Event, pending: deque[FollowUp]
    ) -> tuple[Decided, ev.Event | None]:
        """One event, decided and carried out at one time under one policy (a reload mid-event never mixes
        two policies); returns the outcome of the publish it started, if any."""
        now, policy = self._clock.now(), self._policy()
        decided, local = await self._decide(key, event, now, policy)
        if again := self._reaudited(key, event, decided, now):
            await self._audit.write(again)  # for the audit log only: the date watch saw it the first time
        return decided, await self._carry_out(key, decided, now, policy, pending, local)

    def _reaudited(self, key: Key, event: ev.Event, decided: Decided, now: datetime) -> list[AuditRow]:
        """The input row of a redelivered completion already recorded (see `reaudit_redeliveries`)."""
        if not (self._reaudit and isinstance(event, ev.CompletionArrived)):
            return []
        if _delivery(event, decided) is Delivery.DUPLICATE:
            return [audit_rows.input_row(now, recorded(key, event))]
        return []

    async def _decide(self, key: Key, event: ev.Event, now: datetime, policy: Policy) -> tuple[Decided, bool]:
        """One store update: merge, step, fold (see the module docstring); then commit the state here.
        Says whether it was decided in the outage mode, on this instance's own record."""
        state = self.states.get(key)
        local = self.local.active
        if local:
            decided = self.local.decide(key, state, event, now, policy)
        else:
            try:
                decided = await self._shared(key, state, event, now, policy)
            except TransientError as exc:
                decided, local = await self._without_store(key, state, event, now, policy, exc)
        if decided.state is not None:
            self.states[key] = decided.state
        return decided, local

    async def _shared(
        self, key: Key, state: DateState | None, event: ev.Event, now: datetime, policy: Policy
    ) -> Decided:
        def change(shared: SharedKey) -> tuple[SharedKey, Decided]:
            return decide(shared, state, key, event, now, policy, self._who)

        bodies = dict([body_of(event)]) if isinstance(event, ev.CompletionArrived) else None
        decided = await self._store.update(key, change, now, bodies, isinstance(event, READ_FRESH))
        if not self.local.active:  # (a probe may have ended an outage meanwhile: nothing to reset then)
            self.local.health.answered()
        return decided

    async def _without_store(
        self,
        key: Key,
        state: DateState | None,
        event: ev.Event,
        now: datetime,
        policy: Policy,
        exc: TransientError,
    ) -> tuple[Decided, bool]:
        """The store failed on this event. Past `state_store.outage_after_s` of failure the outage mode
        decides it; before that a completion is nacked and anything else decided locally without a claim."""
        if self.local.health.failed(now, policy.state_store):
            log.error(
                "state store unavailable since %s: routing on local state", self.local.health.failing_since
            )
            await self._alert_alone(
                began_alert(self.local.health.failing_since, policy.state_store), now, policy
            )
        if self.local.active:
            return self.local.decide(key, state, event, now, policy), True
        if isinstance(event, ev.CompletionArrived):
            raise exc  # nack: decide on this message once the store answers again
        log.warning("state store unavailable for %s (%s); deciding on local state", key, exc)
        result = step(state, key, event, now, policy)
        return Decided(result.state, result.effects), False  # no claim: a publish fails and is retried

    async def _carry_out(
        self,
        key: Key,
        decided: Decided,
        now: datetime,
        policy: Policy,
        pending: deque[FollowUp],
        local: bool = False,
    ) -> ev.Event | None:
        """The outbound and local effects, in order; returns the outcome of a publish, if one was started.
        Rows of a decision taken in the outage mode say so (`state_store: unavailable`)."""
        rows: list[AuditRow] = []
        outcome: ev.Event | None = None
        for effect in decided.effects:
            match effect:
                case PublishTrigger():
                    outcome = await self._sender.send(effect, decided.claim, self.states.get(key), rows)
                case RaiseAlert():
                    context = audit_rows.AlertContext.of(decided.state, policy)
                    await self._notifier.alert(effect, now, policy.alerts, rows, context)
                case TransitionEnded():
                    await self._notifier.ended(effect, rows)
                case RecordCompletion():
                    rows.append(audit_rows.input_row(now, effect))
                    if self.expected is not None:
                        self.expected.heard(now)
                case EmitDecision():
                    rows.append(audit_rows.decision_row(now, effect))
                case SetTimer(at=at) if at is not None:
                    self._timers.set(effect.key, at)
                case OpenDownstream():
                    pending.append((effect.key, ev.OpenedByUpstream(effect.mode, effect.correlation_id)))
        if rows:
            if local:
                rows = [{**row, "state_store": "unavailable"} for row in rows]
            await self._audit.write(rows)
            if self.watch is not None:
                await self._raise(self.watch.observe(rows, now, policy), now, policy)
        return outcome

    async def _raise(self, verdicts: list[Verdict], now: datetime, policy: Policy) -> None:
        """Send what the date watch decided: its alerts (rate-limited like every alert) and SLO rows."""
        for verdict in verdicts:
            rows: list[AuditRow] = []
            for alert in verdict.alerts:
                context = audit_rows.AlertContext(alert.mode, alert.missing, alert.next_action, alert.next_at)
                await self._notifier.alert(alert.effect, now, policy.alerts, rows, context)
            if verdict.slo_row is not None:
                rows.append(verdict.slo_row)
            if rows:
                await self._audit.write(rows)
                assert self.watch is not None
                self.watch.observe(rows, now, policy)  # kept for the pages; alert and SLO rows raise nothing

    def _wants_to_wake(self, key: Key, at: datetime) -> bool:
        state = self.states.get(key)
        return state is not None and state.wake_at == at


class _Alone:
    """The per-key lock where nothing runs concurrently (1.5 µs per event saved in replay)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc_info: object) -> None:
        return None


_ALONE = _Alone()


def _delivery(event: ev.Event, decided: Decided) -> Delivery:
    """Decided by the step itself: a redelivered message is ignored there, and says so."""
    if isinstance(event, ev.CompletionArrived):
        for effect in decided.effects:
            if isinstance(effect, DuplicateIgnored) and effect.message_id == event.message_id:
                return Delivery.DUPLICATE
    return Delivery.ROUTED
