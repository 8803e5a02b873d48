"""One event for one key, decided against the record every instance shares: the change a store applies as a
single conditional write.

    merge    what other instances recorded (inputs, the pinned mode, the breaker) comes in first, as `Synced`
    step     the machine decides on the event (`router.machine.step`)
    fold     the durable effects go into the shared record: completions recorded, the mode pinned, the
             breaker shared, the trigger claimed (when the step decided to publish), marked published or
             released (when the shell reports how the publish went)

Pure, so a store can run it again when another instance wrote the record in between; the instance whose
write lands last has therefore decided on every input recorded before it (no two instances can each see
all but the other's input and both wait). Which effects are durable is said here, in `_fold`; which are
outbound or local, in the shell (`ops.engine`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from policies.breaker import newer
from policies.model import Policy
from router import events as ev
from router import shared as records
from router.effects import Effect, PinMode, PublishTrigger, RecordCompletion, ShareBreaker
from router.keys import Key
from router.machine import step
from router.records import completion_id, from_document, summary
from router.shared import Claim, SharedKey
from router.state import DateState


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is deciding: written into claims and marks."""

    instance_id: str
    claim_lease_s: float


@dataclass(frozen=True, slots=True)
class Decided:
    state: DateState | None
    effects: tuple[Effect, ...]
    # The answer to the claim, when the step decided to publish.
    claim: Claim | None = None


def decide(
    shared: SharedKey,
    state: DateState | None,
    key: Key,
    event: ev.Event,
    now: datetime,
    policy: Policy,
    who: Identity,
) -> tuple[SharedKey, Decided]:
    effects: list[Effect] = []
    synced = _news(shared, state, event)
    if synced is not None:
        merged = step(state, key, synced, now, policy)
        state = merged.state
        effects.extend(merged.effects)
    result = step(state, key, event, now, policy)
    effects.extend(result.effects)
    shared, claim = _fold(shared, event, effects, now, who)
    if shared.mode is None and result.state is not None:
        # Opened here while the store was unreachable: pin what this instance has been using.
        shared, _ = records.pin(shared, result.state.mode, result.state.mode_explicit)
    return shared, Decided(result.state, tuple(effects), claim)


def _news(shared: SharedKey, state: DateState | None, event: ev.Event) -> ev.Synced | None:
    """What the shared record knows and this instance does not, or None when there is nothing to merge."""
    seen = state.seen if state is not None else frozenset()
    # The event's own message is decided as itself, even when an earlier attempt of ours recorded it but
    # lost the answer: merging it would make it a duplicate that is never evaluated.
    own = event.message_id if isinstance(event, ev.CompletionArrived) else None
    fresh = tuple(
        from_document(document)
        for document in shared.inputs.values()
        if document["message_id"] not in seen and document["message_id"] != own
    )
    if state is None:
        mode_news = shared.mode is not None
        breaker_news = False
    else:
        mode_news = shared.mode is not None and shared.mode != state.mode and not state.settled
        breaker_news = newer(state.breaker, shared.breaker) is not state.breaker
    if not (fresh or mode_news or breaker_news):
        return None
    return ev.Synced(fresh, shared.breaker, shared.mode)


def _fold(
    shared: SharedKey, event: ev.Event, effects: Iterable[Effect], now: datetime, who: Identity
) -> tuple[SharedKey, Claim | None]:
    claim: Claim | None = None
    for effect in effects:
        match effect:
            case RecordCompletion():
                shared, _ = records.record(shared, completion_id(effect), summary(effect))
            case PinMode():
                shared, _ = records.pin(shared, effect.mode, effect.explicit)
            case ShareBreaker():
                shared = records.share(shared, effect.breaker)
            case PublishTrigger():
                shared, claim = records.claim(
                    shared, effect.trigger_id, who.instance_id, now, who.claim_lease_s
                )
    match event:
        case ev.PublishSucceeded():
            shared = records.mark(shared, event.trigger_id, who.instance_id, event.published_at)
        case ev.PublishFailed():
            shared = records.release(shared, who.instance_id)
    return shared, claim
