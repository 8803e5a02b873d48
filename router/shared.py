"""The record of one key that every instance shares, and the pure decisions that change it.

Both state stores keep this record (Firestore as the key's state document, the in-memory store as the value
itself) and change it only through these functions, so their semantics match by construction:

    pin      the first pinned mode wins, unless a later one is explicit
    record   a completion is recorded once per completion id (a redelivery changes nothing)
    claim    published → "published"; claimed by another holder whose lease is live → "held";
             otherwise this instance claims it with a lease → "claimed"
    mark     claimed → published (the first publish is kept)
    release  after a failed publish the holder gives its claim back, so anyone may claim again
    share    the breaker as last changed (an older change never overwrites a newer one)

A store applies a change as one conditional write: if another instance wrote the record since it was read,
the change is computed again on the newer record. That is what lets the instance that records a key's last
input see every earlier one (see `router.shared_step`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from policies.breaker import Breaker, newer
from policies.model import Mode


class ClaimState(StrEnum):
    CLAIMED = "claimed"
    PUBLISHED = "published"


ClaimOutcome = Literal["claimed", "published", "held"]


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim: this instance may publish, or it is published, or another holder is on it."""

    outcome: ClaimOutcome
    lease_until: datetime | None = None
    published_at: datetime | None = None
    holder: str | None = None


@dataclass(frozen=True)  # no slots: `evolve` copies the instance __dict__ (replay's hot path)
class SharedKey:
    mode: Mode | None = None
    mode_explicit: bool = False
    claim_state: ClaimState | None = None
    holder: str | None = None
    trigger_id: str | None = None
    lease_until: datetime | None = None
    published_at: datetime | None = None
    breaker: Breaker | None = None
    # Every recorded completion of the key by completion id: its document without the message body, which
    # stays in the completion's own document. A compact summary, so one read shows every instance's inputs.
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def evolve(self, **changes: Any) -> SharedKey:
        """A copy with `changes` applied, ~10x faster than `dataclasses.replace` (see `DateState.evolve`)."""
        new = object.__new__(SharedKey)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(changes)
        return new


EMPTY = SharedKey()


def pin(shared: SharedKey, mode: Mode, explicit: bool) -> tuple[SharedKey, Mode]:
    if shared.mode is None or (explicit and shared.mode != mode):
        return shared.evolve(mode=mode, mode_explicit=explicit), mode
    return shared, shared.mode


def record(shared: SharedKey, completion_id: str, document: Mapping[str, Any]) -> tuple[SharedKey, bool]:
    if completion_id in shared.inputs:
        return shared, False  # a redelivery, or our own earlier attempt whose answer was lost
    return shared.evolve(inputs={**shared.inputs, completion_id: document}), True


def claim(
    shared: SharedKey, trigger_id: str, instance_id: str, now: datetime, lease_s: float
) -> tuple[SharedKey, Claim]:
    if shared.claim_state is ClaimState.PUBLISHED:
        return shared, Claim("published", published_at=shared.published_at, holder=shared.holder)
    live = shared.lease_until is not None and shared.lease_until > now
    if shared.claim_state is ClaimState.CLAIMED and shared.holder != instance_id and live:
        return shared, Claim("held", lease_until=shared.lease_until, holder=shared.holder)
    lease_until = now + timedelta(seconds=lease_s)
    claimed = shared.evolve(
        claim_state=ClaimState.CLAIMED,
        holder=instance_id,
        trigger_id=trigger_id,
        lease_until=lease_until,
    )
    return claimed, Claim("claimed", lease_until=lease_until, holder=instance_id)


def mark(shared: SharedKey, trigger_id: str, instance_id: str, now: datetime) -> SharedKey:
    if shared.claim_state is ClaimState.PUBLISHED:
        return shared  # another holder (after our lease ran out) published the same trigger_id first
    return shared.evolve(
        claim_state=ClaimState.PUBLISHED, holder=instance_id, trigger_id=trigger_id, published_at=now
    )


def release(shared: SharedKey, instance_id: str) -> SharedKey:
    if shared.claim_state is ClaimState.CLAIMED and shared.holder == instance_id:
        return shared.evolve(claim_state=None, holder=None, lease_until=None)
    return shared  # published, never claimed, or claimed by someone else since our lease ran out


def share(shared: SharedKey, breaker: Breaker) -> SharedKey:
    if shared.breaker is not None and newer(breaker, shared.breaker) is shared.breaker:
        return shared  # another instance shared a more recent change: keep it
    return shared.evolve(breaker=breaker)


def reconcile(shared: SharedKey, ours: SharedKey, instance_id: str) -> SharedKey:
    """What an instance decided on its own while the store was down (`ours`), written into the record the
    store holds now: every completion it recorded, its pinned mode, its breaker and, when it published, the
    mark. Each step keeps what others wrote (the first pin, an earlier publish, a newer breaker), so running
    it twice changes nothing. A claim whose publish had no answer yet is not carried: nothing was sent."""
    for cid, document in ours.inputs.items():
        shared, _ = record(shared, cid, document)
    if ours.mode is not None:
        shared, _ = pin(shared, ours.mode, ours.mode_explicit)
    if ours.breaker is not None:
        shared = share(shared, ours.breaker)
    if ours.claim_state is ClaimState.PUBLISHED and ours.trigger_id is not None:
        assert ours.published_at is not None
        shared = mark(shared, ours.trigger_id, instance_id, ours.published_at)
    return shared
