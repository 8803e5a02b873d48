"""The trigger claim protocol end to end on the Firestore emulator: engines that share the store never
publish twice, a failed publish leaves the key claimable, and a dead holder's claim is taken over."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest

from adapters.clock import VirtualClock
from adapters.errors import TransientError
from adapters.firestore_store import FirestoreStateStore
from adapters.memory import MemoryAuditSink, MemoryPublisher
from adapters.ports import Claim, Outgoing, StateStore
from ops.engine import Engine, EngineConfig
from ops.replay import advance
from policies.model import Policy
from router.state import Phase
from tests.contract.test_state_store import firestore_store
from tests.support.builders import PHASE2_CLASSES, PHASE2_TOPIC, key, message, utc
from tests.support.emulators import Emulator

pytestmark = pytest.mark.emulator

NIGHT = utc("2025-12-31T06:00")
TRIGGER_TOPIC = "nba-phase3-trigger"
PHASE2 = key("phase2_to_phase3", "2025-12-30")


@pytest.fixture
def store(firestore_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> FirestoreStateStore:
    return firestore_store(monkeypatch, firestore_server.host_port)


class Instance:
    """One cascade instance: its own engine, clock and audit log; the store and the topics are shared."""

    def __init__(self, name: str, policy: Policy, store: StateStore, publisher: MemoryPublisher) -> None:
        self.clock = VirtualClock(NIGHT)
        self.engine = Engine(
            lambda: policy, store, publisher, MemoryAuditSink(), self.clock, EngineConfig(instance_id=name)
        )

    async def deliver_phase2(self) -> None:
        for n, name in enumerate(PHASE2_CLASSES):
            body = message(
                name, "phase_2_raw", "2025-12-30", "2025-12-31T06:00:00Z", output_table=f"ds.{name}"
            )
            # The same message ids on every instance: Pub/Sub redelivering one message to both.
            await self.engine.deliver(PHASE2_TOPIC, f"m{n}", json.dumps(body).encode(), {})

    async def advance(self, to: datetime) -> None:
        await advance(self.engine, self.clock, to)


async def state_document(store: FirestoreStateStore) -> dict[str, Any]:
    return (await store.state_ref(PHASE2).get()).to_dict() or {}


class OverlappingClaims:
    """The shared store, seen through a gate: no trigger is published before two claims have been answered.

    That forces the race the protocol exists for: the second instance claims while the first holds the claim
    and is still publishing. Without the gate the first instance usually finishes before the other claims.
    The claim is taken inside the engine's one update per event, so the gate watches those answers.
    """

    def __init__(self, store: FirestoreStateStore) -> None:
        self.store = store
        self.outcomes: list[str] = []
        self.both_claimed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        answer = await self.store.update(*args, **kwargs)
        claim = getattr(answer, "claim", None)
        if claim is not None:
            self.outcomes.append(claim.outcome)
            if len(self.outcomes) >= 2:
                self.both_claimed.set()
        return answer


@dataclass
class GatedPublisher(MemoryPublisher):
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        if topic == TRIGGER_TOPIC:
            # A deadline, so a broken protocol fails instead of hanging.
            with anyio.fail_after(20):
                await self.gate.wait()
        return await super().publish_many(topic, messages)


async def test_two_engines_sharing_the_store_publish_the_trigger_exactly_once(
    policy: Policy, store: FirestoreStateStore
) -> None:
    shared = OverlappingClaims(store)
    publisher = GatedPublisher(gate=shared.both_claimed)
    a, b = Instance("a", policy, shared, publisher), Instance("b", policy, shared, publisher)
    await asyncio.gather(a.deliver_phase2(), b.deliver_phase2())
    # Exactly one instance got the claim; the other was told it is held.
    assert sorted(shared.outcomes) == ["claimed", "held"]
    for instance in (a, b):  # the loser retries when the lease runs out, and learns it is published
        await instance.advance(NIGHT + timedelta(minutes=5))
    [sent] = publisher.on(TRIGGER_TOPIC)
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id
    assert (
        a.engine.states[PHASE2].phase is Phase.TRIGGERED and b.engine.states[PHASE2].phase is Phase.TRIGGERED
    )
    state = await state_document(store)
    assert state["claim_state"] == "published" and state["trigger_id"] == PHASE2.trigger_id
    assert state["holder"] in {"a", "b"} and state["published_at"] == NIGHT


async def test_a_failed_publish_releases_the_claim_and_the_retry_publishes(
    policy: Policy, store: FirestoreStateStore
) -> None:
    publisher = MemoryPublisher()
    a = Instance("a", policy, store, publisher)
    publisher.fail_next(1)
    await a.deliver_phase2()
    assert publisher.on(TRIGGER_TOPIC) == []
    released = await state_document(store)
    assert released["claim_state"] is None and released["holder"] is None and released["lease_until"] is None
    retry_at = a.engine.states[PHASE2].retry_at
    assert retry_at is not None and retry_at > NIGHT
    a.clock.set(retry_at)
    assert await a.engine.fire_due() >= 1
    [sent] = publisher.on(TRIGGER_TOPIC)
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id
    published = await state_document(store)
    assert published["claim_state"] == "published" and published["published_at"] == retry_at


async def test_the_claim_of_a_dead_instance_is_taken_over_after_its_lease(
    policy: Policy, store: FirestoreStateStore
) -> None:
    await store.claim_trigger(PHASE2, PHASE2.trigger_id, "dead", NIGHT, 60)
    publisher = MemoryPublisher()
    b = Instance("b", policy, store, publisher)
    await b.deliver_phase2()
    assert publisher.on(TRIGGER_TOPIC) == []
    await b.advance(NIGHT + timedelta(seconds=60))
    [sent] = publisher.on(TRIGGER_TOPIC)
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id
    assert (await state_document(store))["holder"] == "b"


async def test_two_processes_racing_on_one_key_through_conditional_writes_never_both_claim(
    firestore_server: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two clients, two stores, no shared lock: only Firestore's conditional writes decide.
    host = firestore_server.host_port
    first = firestore_store(monkeypatch, host, timeout_s=30)
    second = firestore_store(monkeypatch, host, collection=first.collection, timeout_s=30)
    answers = await asyncio.gather(
        first.claim_trigger(PHASE2, PHASE2.trigger_id, "a", NIGHT, 60),
        second.claim_trigger(PHASE2, PHASE2.trigger_id, "b", NIGHT, 60),
        return_exceptions=True,
    )
    assert all(isinstance(answer, Claim | TransientError) for answer in answers), answers
    winners = [a.holder for a in answers if isinstance(a, Claim) and a.outcome == "claimed"]
    assert len(winners) <= 1
    # Asked again without contention, the two agree on one holder: the race's winner if there was one.
    later = NIGHT + timedelta(seconds=1)
    again = [
        await first.claim_trigger(PHASE2, PHASE2.trigger_id, "a", later, 60),
        await second.claim_trigger(PHASE2, PHASE2.trigger_id, "b", later, 60),
    ]
    assert sorted(claim.outcome for claim in again) == ["claimed", "held"]
    holder = (await state_document(first))["holder"]
    assert all(claim.holder == holder for claim in again) and winners in ([], [holder])


async def test_instances_that_each_receive_part_of_the_messages_trigger_once(
    store: FirestoreStateStore, policy: Policy
) -> None:
    publisher = MemoryPublisher()
    first, second = Instance("a", policy, store, publisher), Instance("b", policy, store, publisher)
    for n, name in enumerate(PHASE2_CLASSES):
        target = first if n < 3 else second  # one subscription, two pullers: each gets some messages
        body = message(name, "phase_2_raw", "2025-12-30", "2025-12-31T06:00:00Z", output_table=f"ds.{name}")
        await target.engine.deliver(PHASE2_TOPIC, f"m{n}", json.dumps(body).encode(), {})
    # Neither instance saw all five messages; the second merged what the first recorded in Firestore.
    assert [m.attributes["trigger_id"] for m in publisher.on(TRIGGER_TOPIC)] == [PHASE2.trigger_id]
    await first.advance(NIGHT + timedelta(minutes=15))
    assert len(publisher.on(TRIGGER_TOPIC)) == 1
    assert first.engine.states[PHASE2].phase is Phase.TRIGGERED
    assert (await state_document(store))["claim_state"] == "published"


RACE_ROUNDS = 8


async def test_three_engines_each_handed_a_last_input_at_once_trigger_immediately_exactly_once(
    firestore_server: Emulator, monkeypatch: pytest.MonkeyPatch, policy: Policy
) -> None:
    """The race of issue 7: three instances (three clients, no shared lock) each record one of a key's last
    inputs at the same moment. Whichever write lands last was decided on a record holding every earlier
    input, so the key triggers at once — no re-check needed — and exactly once. Repeated on fresh keys."""
    host = firestore_server.host_port
    refused: list[int] = []
    stores = [firestore_store(monkeypatch, host, on_conflict=lambda: refused.append(1))]
    stores += [
        firestore_store(
            monkeypatch, host, collection=stores[0].collection, on_conflict=lambda: refused.append(1)
        )
        for _ in range(2)
    ]
    publisher = MemoryPublisher()
    instances = [Instance(name, policy, s, publisher) for name, s in zip("abc", stores, strict=True)]
    for round_ in range(RACE_ROUNDS):
        game_date = f"2026-01-{1 + round_:02d}"
        night = (
            f"2026-01-{2 + round_:02d}T06:00:00Z"  # the game date's overnight run (the clock only advances)
        )
        for instance in instances:
            instance.clock.set(utc(night[:16]))
        bodies = [
            json.dumps(message(name, "phase_2_raw", game_date, night, output_table=f"ds.{name}")).encode()
            for name in PHASE2_CLASSES
        ]
        await instances[0].engine.deliver(PHASE2_TOPIC, f"{game_date}-early-0", bodies[0], {})
        await instances[1].engine.deliver(PHASE2_TOPIC, f"{game_date}-early-1", bodies[1], {})
        start = asyncio.Event()

        async def last_input(instance: Instance, body: bytes, message_id: str, start: asyncio.Event) -> None:
            await start.wait()
            await instance.engine.deliver(PHASE2_TOPIC, message_id, body, {})

        racers = [
            last_input(instance, body, f"{game_date}-last-{n}", start)
            for n, (instance, body) in enumerate(zip(instances, bodies[2:], strict=True))
        ]
        gathered = asyncio.gather(*racers)
        start.set()
        await gathered
        # No clock moved: the trigger went out on the messages themselves.
        date_key = key("phase2_to_phase3", game_date)
        sent = [m for m in publisher.on(TRIGGER_TOPIC) if m.attributes["game_date"] == game_date]
        assert [m.attributes["trigger_id"] for m in sent] == [date_key.trigger_id], f"round {round_}"
        phases = [i.engine.states[date_key].phase for i in instances if date_key in i.engine.states]
        assert Phase.TRIGGERED in phases
    # The race did happen: writes decided on a stale record were refused and decided again.
    assert len(refused) >= RACE_ROUNDS
