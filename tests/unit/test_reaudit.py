"""A process killed between recording a completion and making its audit row durable: the redelivery finds the
completion recorded (a duplicate), and the daemon's engine writes its input row again, with the same insert_id
as the first (`adapters.bigquery_schema.insert_id`), so the audit log has it exactly once either way."""

from __future__ import annotations

import json

from adapters.bigquery_schema import insert_id
from adapters.memory import MemoryAuditSink, MemoryPublisher, MemoryStateStore
from ops.engine import Delivery, Engine, EngineConfig
from policies.model import Policy
from tests.support.builders import PHASE2_TOPIC, message
from tests.unit.test_engine import PHASE2, Rig

BODY = json.dumps(
    message("NbacGamebookProcessor", "phase_2_raw", "2025-12-30", "2025-12-31T06:00:00Z")
).encode()


def engine(policy: Policy, store: MemoryStateStore, audit: MemoryAuditSink, reaudit: bool) -> Engine:
    rig = Rig(policy, store)  # the clock and publisher a rig builds; the audit and option are this test's
    config = EngineConfig(instance_id="b", reaudit_redeliveries=reaudit)
    return Engine(lambda: policy, store, MemoryPublisher(), audit, rig.clock, config)


async def test_a_redelivery_of_a_recorded_completion_writes_its_input_row_again_with_the_same_insert_id(
    policy: Policy,
) -> None:
    store = MemoryStateStore()
    killed = MemoryAuditSink()  # the first process: its rows died with it
    assert await engine(policy, store, killed, True).deliver(PHASE2_TOPIC, "m-1", BODY, {}) is Delivery.ROUTED
    audit = MemoryAuditSink()
    restarted = engine(policy, store, audit, True)
    await restarted.rebuild(PHASE2.game_date)  # what the store recorded comes back as seen
    assert await restarted.deliver(PHASE2_TOPIC, "m-1", BODY, {}) is Delivery.DUPLICATE
    [first] = [r for r in killed.rows if r["kind"] == "input"]
    [again] = [r for r in audit.rows if r["kind"] == "input"]
    assert again["message_id"] == "m-1" and insert_id(again) == insert_id(first)


async def test_replay_keeps_one_input_row_per_completion(policy: Policy) -> None:
    store, audit = MemoryStateStore(), MemoryAuditSink()
    replayed = engine(policy, store, audit, False)
    for _ in range(2):
        await replayed.deliver(PHASE2_TOPIC, "m-1", BODY, {})
    assert len([r for r in audit.rows if r["kind"] == "input"]) == 1


def test_only_an_input_row_is_identified_without_its_instant() -> None:
    row = {"kind": "input", "message_id": "m-1", "at": "2025-12-31T06:00:00Z"}
    assert insert_id(row) == insert_id({**row, "at": "2025-12-31T06:05:00Z"})
    decision = {"kind": "decision", "at": "2025-12-31T06:00:00Z"}
    assert insert_id(decision) != insert_id({**decision, "at": "2025-12-31T06:05:00Z"})
