"""Firestore down (issue 9, section 3): past `state_store.outage_after_s` an instance routes on its own
state, journals what it decided, and writes the journal into the store once a probe finds it answering."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.errors import TransientError
from adapters.journal import FileJournal
from adapters.memory import MemoryJournal, MemoryStateStore
from ops.engine import Delivery
from policies.model import Policy
from router.shared import ClaimState
from router.state import Phase
from tests.support.builders import PHASE2_CLASSES, PHASE2_TOPIC, key, message
from tests.unit.test_engine import NIGHT, PHASE2, Rig

OUTAGE_AFTER = timedelta(seconds=60)  # the NBA policy's state_store.outage_after_s
PROBE_EVERY = timedelta(seconds=10)
EARLIER = key("phase2_to_phase3", "2025-12-29")


@pytest.fixture
def store() -> MemoryStateStore:
    return MemoryStateStore()


async def enter_outage(rig: Rig) -> None:
    """The store fails on a completion, then again once `outage_after_s` has passed."""
    rig.store.down = True
    with pytest.raises(TransientError):  # failing, not yet an outage: nacked, Pub/Sub redelivers
        await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[:1], "phase_2_raw")
    rig._n -= 1
    rig.clock.set(rig.clock.now() + OUTAGE_AFTER)


async def test_past_the_outage_threshold_completions_are_journaled_routed_and_the_day_triggers(
    policy: Policy,
) -> None:
    journal = MemoryJournal()
    rig = Rig(policy, journal=journal)
    await enter_outage(rig)
    assert await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw") == [Delivery.ROUTED] * len(
        PHASE2_CLASSES
    )
    [sent] = rig.publisher.on("nba-phase3-trigger")
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id
    assert rig.engine.states[PHASE2].phase is Phase.TRIGGERED
    assert rig.store.keys == {}  # nothing reached the store ...
    ours = journal.kept[PHASE2]  # ... all of it is in the journal, with every body
    assert len(ours.record.inputs) == len(PHASE2_CLASSES) == len(ours.bodies)
    assert ours.record.claim_state is ClaimState.PUBLISHED
    assert [a["alert"] for a in rig.rows("alert")] == ["state_store_unavailable"]
    assert {r.get("state_store") for r in rig.rows("trigger") + rig.rows("input")} == {"unavailable"}


async def test_when_the_store_answers_again_the_journal_is_written_into_it(policy: Policy) -> None:
    journal = MemoryJournal()
    rig = Rig(policy, journal=journal)
    await enter_outage(rig)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    await rig.advance(rig.clock.now() + 3 * PROBE_EVERY)  # probes fail: the store is still down
    assert rig.engine.local.active and journal.kept
    rig.store.down = False
    await rig.advance(rig.clock.now() + PROBE_EVERY)
    assert not rig.engine.local.active and journal.kept == {}
    record = rig.store.keys[PHASE2]
    assert record.claim_state is ClaimState.PUBLISHED and record.trigger_id == PHASE2.trigger_id
    documents = await rig.store.completions(PHASE2)
    assert len(documents) == len(PHASE2_CLASSES) and all(d["message_json"] for d in documents)
    assert [a["alert"] for a in rig.rows("alert")] == ["state_store_unavailable", "state_store_recovered"]
    assert len(rig.publisher.on("nba-phase3-trigger")) == 1


async def test_two_instances_in_the_outage_split_a_key_and_once_reconciled_one_of_them_triggers(
    policy: Policy, store: MemoryStateStore
) -> None:
    a, b = Rig(policy, store, "a"), Rig(policy, store, "b")
    for rig in (a, b):
        await enter_outage(rig)
        rig.clock.set(NIGHT + OUTAGE_AFTER)
    half = len(PHASE2_CLASSES) // 2
    await a.send(PHASE2_TOPIC, PHASE2_CLASSES[:half], "phase_2_raw")
    await b.send(PHASE2_TOPIC, PHASE2_CLASSES[half:], "phase_2_raw")
    triggers = [m for rig in (a, b) for m in rig.publisher.on("nba-phase3-trigger")]
    assert triggers == []  # neither saw the whole phase
    store.down = False
    for rig in (a, b):
        await rig.advance(NIGHT + OUTAGE_AFTER + PROBE_EVERY)
    sent = a.publisher.on("nba-phase3-trigger") + b.publisher.on("nba-phase3-trigger")
    assert [m.attributes["trigger_id"] for m in sent] == [PHASE2.trigger_id]
    assert len(store.keys[PHASE2].inputs) == len(PHASE2_CLASSES)
    assert store.keys[PHASE2].claim_state is ClaimState.PUBLISHED


async def test_two_instances_in_the_outage_may_both_publish_but_only_the_same_trigger_id(
    policy: Policy, store: MemoryStateStore
) -> None:
    a, b = Rig(policy, store, "a"), Rig(policy, store, "b")
    for rig in (a, b):
        await enter_outage(rig)
        await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")  # Pub/Sub: each got every message
    sent = a.publisher.on("nba-phase3-trigger") + b.publisher.on("nba-phase3-trigger")
    assert {m.attributes["trigger_id"] for m in sent} == {PHASE2.trigger_id}
    store.down = False
    for rig in (a, b):
        await rig.advance(rig.clock.now() + PROBE_EVERY)
    record = store.keys[PHASE2]
    assert record.claim_state is ClaimState.PUBLISHED and record.holder == "a"  # the first mark is kept


async def test_a_restart_during_the_outage_goes_on_from_the_journal(policy: Policy, tmp_path: Path) -> None:
    store = MemoryStateStore()
    other = Rig(policy, store, "z")  # before the outage, another instance opened a key the journal lacks
    body = message(PHASE2_CLASSES[0], "phase_2_raw", EARLIER.game_date.isoformat(), "2025-12-31T05:00:00Z")
    await other.engine.deliver(PHASE2_TOPIC, "z-1", json.dumps(body).encode(), {})
    first = Rig(policy, store, "a", FileJournal(tmp_path / "journal.jsonl"))
    await enter_outage(first)
    await first.send(PHASE2_TOPIC, PHASE2_CLASSES[:-1], "phase_2_raw")  # acked, then kill -9
    restarted = Rig(policy, store, "a", FileJournal(tmp_path / "journal.jsonl"))
    restarted.clock.set(first.clock.now())
    assert await restarted.engine.recover(EARLIER.game_date) == 1
    assert restarted.engine.local.active
    assert len(restarted.engine.states[PHASE2].seen) == len(PHASE2_CLASSES) - 1
    restarted._n = first._n
    await restarted.send(PHASE2_TOPIC, PHASE2_CLASSES[-1:], "phase_2_raw")
    assert len(restarted.publisher.on("nba-phase3-trigger")) == 1
    store.down = False
    await restarted.advance(restarted.clock.now() + PROBE_EVERY)
    assert len(store.keys[PHASE2].inputs) == len(PHASE2_CLASSES)
    assert store.keys[PHASE2].claim_state is ClaimState.PUBLISHED
    assert EARLIER in restarted.engine.states  # rebuilt once the store answered


async def test_a_restart_after_the_outage_writes_the_journal_before_rebuilding(
    policy: Policy, tmp_path: Path
) -> None:
    store = MemoryStateStore()
    first = Rig(policy, store, "a", FileJournal(tmp_path / "journal.jsonl"))
    await enter_outage(first)
    await first.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    store.down = False  # it answers again before the killed instance comes back
    restarted = Rig(policy, store, "a", FileJournal(tmp_path / "journal.jsonl"))
    assert await restarted.engine.recover(PHASE2.game_date) >= 1
    assert not restarted.engine.local.active
    assert store.keys[PHASE2].claim_state is ClaimState.PUBLISHED
    assert restarted.engine.states[PHASE2].phase is Phase.TRIGGERED
    assert FileJournal(tmp_path / "journal.jsonl").load() == {}


async def test_a_start_with_the_store_down_starts_anyway_and_rebuilds_when_it_answers(policy: Policy) -> None:
    store = MemoryStateStore()
    before = Rig(policy, store, "a")
    await before.send(PHASE2_TOPIC, PHASE2_CLASSES[:-1], "phase_2_raw")
    store.down = True
    rig = Rig(policy, store, "b")
    assert await rig.engine.recover(PHASE2.game_date) == 0  # no crash: the start goes on
    rig.clock.set(NIGHT + OUTAGE_AFTER)
    rig._n = 100
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[-1:], "phase_2_raw")  # the outage begins on it
    assert rig.engine.local.active and rig.publisher.on("nba-phase3-trigger") == []  # it has one input
    store.down = False
    await rig.advance(rig.clock.now() + PROBE_EVERY)
    assert PHASE2 in rig.engine.states and len(rig.engine.states[PHASE2].seen) == len(PHASE2_CLASSES)
    assert len(rig.publisher.on("nba-phase3-trigger")) == 1


async def test_in_the_outage_a_completion_the_journal_cannot_keep_is_nacked_and_not_counted(
    policy: Policy, tmp_path: Path
) -> None:
    (tmp_path / "full").write_text("")  # a file where the journal's directory should be: every write fails
    rig = Rig(policy, journal=FileJournal(tmp_path / "full" / "journal.jsonl"))
    await enter_outage(rig)
    with pytest.raises(TransientError, match="not writable"):
        await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[:1], "phase_2_raw")
    assert PHASE2 not in rig.engine.states or not rig.engine.states[PHASE2].seen
