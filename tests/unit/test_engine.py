"""The shell on in-memory adapters: durability before ack, the claim protocol, dead letters, alert limits."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import anyio
import pytest

from adapters.clock import VirtualClock
from adapters.errors import PermanentInputError, PublishError, TransientError
from adapters.memory import MemoryAuditSink, MemoryPublisher, MemoryStateStore
from adapters.ports import Journal
from ops.audit_rows import iso_z
from ops.engine import Delivery, Engine, EngineConfig
from ops.replay import advance
from policies.model import Mode, Policy
from router import events as ev
from router.intake import Rejected, accept
from router.keys import Key
from router.shared import EMPTY, SharedKey
from router.state import Phase
from tests.support.builders import (
    PHASE2_CLASSES,
    PHASE2_TOPIC,
    PHASE3_CLASSES,
    PHASE3_TOPIC,
    key,
    message,
    utc,
)

NIGHT = utc("2025-12-31T06:00")
PHASE2 = key("phase2_to_phase3", "2025-12-30")


class RacingStore:
    """A store on which another instance writes between this one's read and its write, once."""

    def __init__(self, store: MemoryStateStore, meanwhile: Callable[[], Awaitable[object]]) -> None:
        self.store, self.meanwhile, self.stale_inputs = store, meanwhile, -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def update(
        self, key: Key, change: Any, now: Any, documents: Any = None, fresh: bool = False
    ) -> Any:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            stale: SharedKey = self.store.keys.get(key, EMPTY)
            self.stale_inputs = len(stale.inputs)
            change(stale)  # decided on what it read ...
            await meanwhile()  # ... while the other instance wrote: the conditional write is refused
        return await self.store.update(key, change, now, documents, fresh)


class Rig:
    def __init__(
        self,
        policy: Policy,
        store: MemoryStateStore | None = None,
        instance: str = "a",
        journal: Journal | None = None,
    ) -> None:
        self.clock = VirtualClock(NIGHT)
        self.store = store or MemoryStateStore()
        self.publisher = MemoryPublisher()
        self.audit = MemoryAuditSink()
        self.engine = Engine(
            lambda: policy,
            self.store,
            self.publisher,
            self.audit,
            self.clock,
            EngineConfig(instance_id=instance),
            journal=journal,
        )
        self._n = 0
        self.instance = instance

    async def send(
        self, topic: str, classes: list[str], phase: str, at: datetime | None = None
    ) -> list[Delivery]:
        outcomes = []
        for name in classes:
            self._n += 1
            if at is not None:
                self.clock.set(at)
            ts = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            body = json.dumps(message(name, phase, "2025-12-30", ts, output_table=f"ds.{name}"))
            message_id = f"{self.instance}-m{self._n}"
            outcomes.append(await self.engine.deliver(topic, message_id, body.encode(), {}))
        return outcomes

    async def advance(self, to: datetime) -> None:
        await advance(self.engine, self.clock, to)

    def rows(self, kind: str) -> list[dict]:  # type: ignore[type-arg]
        return [dict(r) for r in self.audit.rows if r["kind"] == kind]


async def test_store_outage_propagates_and_the_redelivery_is_processed_as_new(policy: Policy) -> None:
    rig = Rig(policy)
    rig.store.fail_next(1)
    body = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-30", "2025-12-31T06:00:00Z"))
    with pytest.raises(TransientError):
        await rig.engine.deliver(PHASE2_TOPIC, "m-1", body.encode(), {})
    assert rig.engine.states.get(PHASE2) is None or "m-1" not in rig.engine.states[PHASE2].seen
    assert await rig.engine.deliver(PHASE2_TOPIC, "m-1", body.encode(), {}) is Delivery.ROUTED
    assert len(await rig.store.completions(PHASE2)) == 1
    assert await rig.engine.deliver(PHASE2_TOPIC, "m-1", body.encode(), {}) is Delivery.DUPLICATE


async def test_failed_publish_releases_the_claim_and_the_retry_publishes_the_same_trigger_id(
    policy: Policy,
) -> None:
    rig = Rig(policy)
    rig.publisher.fail_next(1)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    state = rig.engine.states[PHASE2]
    assert state.phase is Phase.COLLECTING and state.published is None
    assert rig.store.keys[PHASE2].claim_state is None  # released: anyone may retry
    assert rig.rows("trigger") == []
    await rig.advance(NIGHT + timedelta(minutes=1))
    [sent] = rig.publisher.on("nba-phase3-trigger")
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id
    assert rig.engine.states[PHASE2].phase is Phase.TRIGGERED
    assert rig.store.keys[PHASE2].claim_state == "published"
    assert [a["alert"] for a in rig.rows("alert")] == ["publish_failed"]


async def test_a_store_outage_on_the_last_input_nacks_it_and_the_redelivery_triggers(policy: Policy) -> None:
    rig = Rig(policy)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[:-1], "phase_2_raw")
    rig.store.fail_next(1)
    with pytest.raises(TransientError):
        await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[-1:], "phase_2_raw")
    assert (
        rig.engine.states[PHASE2].phase is Phase.COLLECTING and rig.publisher.on("nba-phase3-trigger") == []
    )
    rig._n -= 1  # Pub/Sub redelivers the same message
    assert await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[-1:], "phase_2_raw") == [Delivery.ROUTED]
    assert rig.engine.states[PHASE2].phase is Phase.TRIGGERED
    assert len(rig.publisher.on("nba-phase3-trigger")) == 1


async def test_a_store_outage_when_a_timer_decides_to_publish_is_a_failed_publish_then_retried(
    policy: Policy,
) -> None:
    rig = Rig(policy)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[:-1], "phase_2_raw")
    rig.store.fail_next(1)
    await rig.engine.submit(PHASE2, ev.ForceTrigger("ops", "gamebook is late"))
    state = rig.engine.states[PHASE2]
    assert state.phase is Phase.COLLECTING and state.retry_at is not None  # not stuck in "publishing"
    assert [a["alert"] for a in rig.rows("alert")] == ["publish_failed"]
    await rig.advance(state.retry_at)
    [sent] = rig.publisher.on("nba-phase3-trigger")
    assert sent.attributes["source"] == "manual"
    assert rig.store.keys[PHASE2].claim_state == "published"


async def test_a_failed_batch_publish_is_repeated_whole_with_the_same_trigger_id(policy: Policy) -> None:
    rig = Rig(policy)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    rig.publisher.fail_next(1)
    await rig.send(PHASE3_TOPIC, PHASE3_CLASSES, "phase_3_analytics", at=NIGHT + timedelta(minutes=30))
    assert rig.publisher.on("nba-phase4-trigger") == []  # one request for the five messages: none went out
    await rig.advance(NIGHT + timedelta(minutes=31))
    phase4 = rig.publisher.on("nba-phase4-trigger")
    assert len(phase4) == 5
    assert {m.attributes["trigger_id"] for m in phase4} == {key("phase3_to_phase4", "2025-12-30").trigger_id}
    assert len({m.data for m in phase4}) == 5  # one message per phase-3 table, each once
    audited = [r for r in rig.rows("trigger") if r["transition"] == "phase3_to_phase4"]
    assert len(audited) == 5  # the audit records the confirmed publish only


async def test_second_instance_sharing_the_store_never_publishes_a_published_trigger(policy: Policy) -> None:
    store = MemoryStateStore()
    first, second = Rig(policy, store, "a"), Rig(policy, store, "b")
    await first.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    await second.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    assert len(first.publisher.on("nba-phase3-trigger")) == 1
    assert second.publisher.on("nba-phase3-trigger") == []
    assert second.engine.states[PHASE2].phase is Phase.TRIGGERED  # adopted from the store


async def test_expired_claim_of_a_dead_instance_is_taken_over_with_the_same_trigger_id(
    policy: Policy,
) -> None:
    store = MemoryStateStore()
    await store.claim_trigger(PHASE2, PHASE2.trigger_id, "dead", NIGHT, 60)
    rig = Rig(policy, store, "b")
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    assert rig.publisher.on("nba-phase3-trigger") == []
    assert rig.engine.states[PHASE2].retry_at == NIGHT + timedelta(seconds=60)
    await rig.advance(NIGHT + timedelta(minutes=2))
    [sent] = rig.publisher.on("nba-phase3-trigger")
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id


async def test_mode_pinned_by_another_instance_is_adopted(policy: Policy) -> None:
    store = MemoryStateStore()
    await store.pin_mode(PHASE2, Mode.SAME_DAY, False, NIGHT)
    rig = Rig(policy, store)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[:1], "phase_2_raw")
    assert rig.engine.states[PHASE2].mode is Mode.SAME_DAY


@pytest.mark.parametrize(
    ("topic", "data", "reason"),
    [
        (PHASE2_TOPIC, b"\xff\xfe", "not JSON"),
        (PHASE2_TOPIC, b"[1, 2]", "not a JSON object"),
        (PHASE2_TOPIC, b'{"processor_name": "X"}', "invalid completion message: phase: Field required"),
        ("nba-unknown-topic", b"{}", "not a completion topic"),
        (
            PHASE2_TOPIC,
            json.dumps(message("X", "phase_3_analytics", "2025-12-30", "2025-12-31T06:00:00Z")).encode(),
            "phase 'phase_3_analytics' is not accepted",
        ),
        (
            PHASE2_TOPIC,
            json.dumps(message("X", "phase_2_raw", "2025-12-30T00:00:00", "2025-12-31T06:00:00Z")).encode(),
            "game_date",
        ),
    ],
    ids=["binary", "array", "schema", "topic", "wrong-phase", "datetime-as-date"],
)
async def test_malformed_messages_are_dead_lettered_with_reason_and_original_data(
    policy: Policy, topic: str, data: bytes, reason: str
) -> None:
    rig = Rig(policy)
    assert await rig.engine.deliver(topic, "bad-1", data, {"origin": "x"}) is Delivery.DEAD_LETTERED
    [letter] = rig.publisher.on("cascade-dead-letter")
    assert letter.data == data
    assert reason in letter.attributes["reason"]
    assert letter.attributes["origin"] == "x" and letter.attributes["source_topic"] == topic
    [row] = rig.rows("dead_letter")
    assert reason in row["reason"] and row["message_id"] == "bad-1"
    assert row["category"] == letter.attributes["category"] == accepted_category(topic, data, policy)


def accepted_category(topic: str, data: bytes, policy: Policy) -> str:
    rejected = accept(topic, "bad-1", data, policy)
    assert isinstance(rejected, Rejected)
    return rejected.category.value


class UnstorableStore:
    """The memory store, but the completions of `refused` dates are refused as Firestore refuses a value it
    cannot hold (an array in an array, a body over 1 MiB): a `PermanentInputError`, nothing written."""

    def __init__(self, store: MemoryStateStore, refused: set[str]) -> None:
        self.store, self.refused, self.attempts = store, refused, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def update(self, key: Key, *args: Any, **kwargs: Any) -> Any:
        if key.game_date.isoformat() in self.refused:
            self.attempts += 1
            raise PermanentInputError(f"Firestore cannot store the update of {key}: value too large")
        return await self.store.update(key, *args, **kwargs)


async def test_a_completion_the_store_can_never_hold_is_dead_lettered_at_once_with_its_reason(
    policy: Policy,
) -> None:
    rig = Rig(policy)
    store = UnstorableStore(rig.store, {"2025-12-29"})
    rig.engine = Engine(lambda: policy, store, rig.publisher, rig.audit, rig.clock)
    ts = "2025-12-31T06:00:00Z"
    body = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-29", ts)).encode()
    # Was: the PermanentInputError escaped (traceback, nack), 20 redeliveries over ~2 h before Pub/Sub gave up.
    assert await rig.engine.deliver(PHASE2_TOPIC, "big-1", body, {"origin": "x"}) is Delivery.DEAD_LETTERED
    [letter] = rig.publisher.on("cascade-dead-letter")
    assert (letter.data, letter.attributes["category"]) == (body, "unstorable")
    assert "value too large" in letter.attributes["reason"] and letter.attributes["origin"] == "x"
    [row] = rig.rows("dead_letter")
    assert (row["category"], row["message_id"], row["topic"]) == ("unstorable", "big-1", PHASE2_TOPIC)
    assert "value too large" in row["reason"]
    assert (
        store.attempts == 1
        and rig.rows("input") == []
        and key("phase2_to_phase3", "2025-12-29") not in (rig.engine.states)
    )
    assert await rig.send(PHASE2_TOPIC, PHASE2_CLASSES[:1], "phase_2_raw") == [Delivery.ROUTED]


async def test_an_unstorable_completion_whose_dead_letter_fails_is_nacked_and_not_recorded_as_sent(
    policy: Policy,
) -> None:
    rig = Rig(policy)
    rig.engine = Engine(
        lambda: policy, UnstorableStore(rig.store, {"2025-12-29"}), rig.publisher, rig.audit, rig.clock
    )
    ts = "2025-12-31T06:00:00Z"
    body = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-29", ts)).encode()
    rig.publisher.fail_next(1)
    with pytest.raises(TransientError):  # the daemon nacks: Pub/Sub redelivers, the message is never lost
        await rig.engine.deliver(PHASE2_TOPIC, "big-1", body, {})
    assert rig.publisher.on("cascade-dead-letter") == [] and rig.rows("dead_letter") == []


async def test_a_dead_letter_stays_within_pub_sub_attribute_limits_whatever_the_message_carried(
    policy: Policy,
) -> None:
    # A reason quoting 2,000 four-byte characters, and 120 attributes on the original: Pub/Sub would refuse
    # the dead letter (1,024 bytes per value, 100 attributes) and the message would be nacked forever.
    body = json.dumps(
        message("NbacGamebookProcessor", "\U0001f3c0" * 2000, "2025-12-30", "2025-12-31T06:00:00Z")
    )
    attributes = {f"a{n:03d}": "v" for n in range(120)}
    rig = Rig(policy)
    assert (
        await rig.engine.deliver(PHASE2_TOPIC, "bad-1", body.encode(), attributes) is Delivery.DEAD_LETTERED
    )
    [letter] = rig.publisher.on("cascade-dead-letter")
    assert len(letter.attributes) == 100
    assert all(len(value.encode()) <= 1024 for value in letter.attributes.values())
    assert letter.attributes["category"] == "wrong_phase" and letter.attributes["message_id"] == "bad-1"
    assert letter.attributes["reason"].startswith("phase '\U0001f3c0")
    [row] = rig.rows("dead_letter")
    assert len(row["reason"]) > 2000  # the audit row keeps the whole reason


async def test_dead_letter_publish_failure_propagates_so_the_message_is_redelivered(policy: Policy) -> None:
    rig = Rig(policy)
    rig.publisher.fail_next(1)
    with pytest.raises(PublishError):
        await rig.engine.deliver(PHASE2_TOPIC, "bad-1", b"nope", {})
    assert rig.rows("dead_letter") == []


async def test_alerts_are_rate_limited_per_signature_and_summarised(policy: Policy) -> None:
    rig = Rig(policy)
    for n in range(8):
        await rig.send(PHASE2_TOPIC, [f"MysteryProcessor{n}"], "phase_2_raw")
    alerts = [a["alert"] for a in rig.rows("alert")]
    assert alerts == ["unknown_processor"] * policy.alerts.max_per_window
    assert len(rig.publisher.on("nba-slo-violation")) == policy.alerts.max_per_window
    await rig.advance(NIGHT + timedelta(seconds=policy.alerts.window_s + 1))
    summary = rig.rows("alert")[-1]
    assert summary["alert"] == "alerts_suppressed" and summary["message"].startswith(
        "3 more 'unknown_processor'"
    )


async def test_upstream_trigger_opens_the_downstream_key_with_its_own_timers(policy: Policy) -> None:
    rig = Rig(policy)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    downstream = Key(PHASE2.game_date, "phase3_to_phase4")
    state = rig.engine.states[downstream]
    assert state.mode is Mode.OVERNIGHT and state.wake_at is not None
    await rig.advance(utc("2026-01-01T00:00"))
    assert rig.engine.states[downstream].phase is Phase.FAILED
    assert "manual_intervention_required" in [a["alert"] for a in rig.rows("alert")]


async def test_recorded_completion_keeps_the_message_with_its_unknown_fields(policy: Policy) -> None:
    rig = Rig(policy)
    body = message(
        "NbacGamebookProcessor",
        "phase_2_raw",
        "2025-12-30",
        "2025-12-31T06:00:00Z",
        scraper_version="4.2",
        metadata={"games_expected": 11, "games_processed": 11, "source_file": "gs://x/y.json"},
    )
    await rig.engine.deliver(PHASE2_TOPIC, "m-extra", json.dumps(body).encode(), {})
    [document] = await rig.store.completions(PHASE2)
    assert document["processor"] == "nbac_gamebook" and document["message_id"] == "m-extra"
    assert json.loads(document["message_json"]) == body


async def test_instances_that_each_receive_part_of_a_dates_messages_trigger_it_once(policy: Policy) -> None:
    store = MemoryStateStore()
    first, second = Rig(policy, store, "a"), Rig(policy, store, "b")
    await first.send(PHASE2_TOPIC, PHASE2_CLASSES[:3], "phase_2_raw")
    await second.send(PHASE2_TOPIC, PHASE2_CLASSES[3:], "phase_2_raw")
    # The second instance merged the three completions the first recorded, so it saw all five and decided.
    assert [m.attributes["trigger_id"] for m in second.publisher.on("nba-phase3-trigger")] == [
        PHASE2.trigger_id
    ]
    assert first.publisher.on("nba-phase3-trigger") == []
    merged = second.engine.states[PHASE2]
    assert len(merged.reports) == 5 and merged.phase is Phase.TRIGGERED
    # The first instance learns it at its next timer: the store says published, it does not publish again.
    await first.advance(NIGHT + timedelta(minutes=15))
    assert first.publisher.on("nba-phase3-trigger") == []
    assert first.engine.states[PHASE2].phase is Phase.TRIGGERED


async def test_the_instance_recording_the_last_input_sees_every_earlier_one_even_if_it_read_before(
    policy: Policy,
) -> None:
    """The race of issue 7: each instance read the key before the other's write. The write of the one that
    lands second is refused (the record changed), so it decides again on the record with both inputs."""
    store = MemoryStateStore()
    first, second = Rig(policy, store, "a"), Rig(policy, store, "b")
    await first.send(PHASE2_TOPIC, PHASE2_CLASSES[:3], "phase_2_raw")
    raced = RacingStore(store, lambda: first.send(PHASE2_TOPIC, PHASE2_CLASSES[3:4], "phase_2_raw"))
    second.engine = Engine(
        lambda: policy, raced, second.publisher, second.audit, second.clock, EngineConfig("b")
    )
    await second.send(PHASE2_TOPIC, PHASE2_CLASSES[4:], "phase_2_raw")
    assert first.publisher.on("nba-phase3-trigger") == []
    [sent] = second.publisher.on("nba-phase3-trigger")
    assert sent.attributes["trigger_id"] == PHASE2.trigger_id
    # It first decided on the record it read (three inputs), then again on the one with all five.
    assert raced.stale_inputs == 3 and len(second.engine.states[PHASE2].reports) == 5


async def test_a_breaker_opened_by_one_instance_is_adopted_by_the_other(policy: Policy) -> None:
    store = MemoryStateStore()
    first, second = Rig(policy, store, "a"), Rig(policy, store, "b")
    await second.send(PHASE2_TOPIC, PHASE2_CLASSES[:1], "phase_2_raw")
    for minute in range(policy.breaker.failure_threshold):
        first.clock.set(NIGHT + timedelta(minutes=minute + 1))
        ts = first.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-30", ts, status="failed"))
        await first.engine.deliver(PHASE2_TOPIC, f"fail-{minute}", body.encode(), {})
    assert first.engine.states[PHASE2].phase is Phase.BREAKER_OPEN
    shared = await store.shared_breaker(PHASE2)
    assert shared is not None and shared.state.value == "open"
    await second.advance(NIGHT + timedelta(minutes=11))  # its re-check merges the shared state first
    adopted = second.engine.states[PHASE2]
    assert adopted.breaker == shared and adopted.phase is Phase.BREAKER_OPEN


async def test_a_restarted_instance_rebuilds_recent_keys_and_re_arms_their_timers(policy: Policy) -> None:
    store = MemoryStateStore()
    before = Rig(policy, store, "old")
    await before.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    await before.send(PHASE3_TOPIC, PHASE3_CLASSES[:2], "phase_3_analytics")
    after = Rig(policy, store, "new")  # the old process is gone, its memory with it
    assert await after.engine.rebuild(PHASE2.game_date) == 2
    downstream = Key(PHASE2.game_date, "phase3_to_phase4")
    assert after.engine.states[PHASE2].phase is Phase.TRIGGERED
    restored = after.engine.states[downstream]
    assert restored.mode is Mode.OVERNIGHT and len(restored.reports) == 2
    assert restored.wake_at is not None  # its deadlines fire even if no phase-3 message ever comes again
    await after.advance(utc("2026-01-01T00:00"))
    assert "manual_intervention_required" in [a["alert"] for a in after.rows("alert")]
    assert after.publisher.on("nba-phase3-trigger") == []  # the published trigger is not sent again
    assert await after.engine.rebuild(PHASE2.game_date + timedelta(days=1)) == 0


async def test_every_confirmed_trigger_is_reported_with_the_time_since_its_newest_input(
    policy: Policy,
) -> None:
    seen: list[tuple[str, float | None]] = []
    rig = Rig(policy)
    rig.engine = Engine(
        lambda: policy,
        rig.store,
        rig.publisher,
        rig.audit,
        rig.clock,
        EngineConfig(instance_id="a"),
        lambda effect, latency_s: seen.append((effect.trigger_id, latency_s)),
    )
    for n, name in enumerate(PHASE2_CLASSES):  # one report a minute, the trigger a minute after the last
        rig.clock.set(NIGHT + timedelta(minutes=n))
        body = message(name, "phase_2_raw", "2025-12-30", "2025-12-31T06:03:00Z")
        if n == len(PHASE2_CLASSES) - 1:
            rig.clock.set(NIGHT + timedelta(minutes=5))
        await rig.engine.deliver(PHASE2_TOPIC, f"m-{n}", json.dumps(body).encode(), {})
    assert seen == [(PHASE2.trigger_id, 120.0)]  # published 06:05, newest report stamped 06:03


async def test_forget_drops_old_settled_keys_and_keeps_those_still_waiting(policy: Policy) -> None:
    rig = Rig(policy)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")  # phase 2 triggered, phase 3 key waiting
    downstream = Key(PHASE2.game_date, "phase3_to_phase4")
    assert rig.engine.forget(PHASE2.game_date) == 0  # nothing is older than the cut-off date itself
    assert rig.engine.forget(PHASE2.game_date + timedelta(days=1)) == 1
    assert PHASE2 not in rig.engine.states and downstream in rig.engine.states


async def test_each_transition_outcome_is_announced_on_the_status_topic(policy: Policy) -> None:
    rig = Rig(policy)
    await rig.send(PHASE2_TOPIC, PHASE2_CLASSES, "phase_2_raw")
    await rig.advance(utc("2026-01-01T00:00"))  # phase 3 never reports: its key fails at self-heal
    statuses = [json.loads(m.data) for m in rig.publisher.on("nba-orchestration-status")]
    assert [(s["transition"], s["outcome"]) for s in statuses] == [
        ("phase2_to_phase3", "triggered"),
        ("phase3_to_phase4", "failed"),
    ]
    assert statuses[0]["trigger_id"] == PHASE2.trigger_id


class YieldingStore:
    """The memory store, but every update lets other tasks run first, as a network round trip does."""

    def __init__(self, store: MemoryStateStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def update(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await self.store.update(*args, **kwargs)


async def test_concurrent_deliveries_each_report_their_own_outcome(policy: Policy) -> None:
    """A duplicate on one date while a new message arrives on another: each delivery's outcome comes from
    the step that decided it, not from a shared counter read around an await."""
    rig = Rig(policy)
    rig.engine = Engine(lambda: policy, YieldingStore(rig.store), rig.publisher, rig.audit, rig.clock)
    ts = "2025-12-31T06:00:00Z"
    first = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-30", ts)).encode()
    other_date = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-29", ts)).encode()
    assert await rig.engine.deliver(PHASE2_TOPIC, "m-1", first, {}) is Delivery.ROUTED
    outcomes: dict[str, Delivery] = {}

    async def deliver(message_id: str, body: bytes) -> None:
        outcomes[message_id] = await rig.engine.deliver(PHASE2_TOPIC, message_id, body, {})

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(deliver, "m-1", first)  # a redelivery
        tasks.start_soon(deliver, "m-2", other_date)  # new, on another date
    assert outcomes == {"m-1": Delivery.DUPLICATE, "m-2": Delivery.ROUTED}


async def test_many_concurrent_deliveries_with_interleaved_duplicates_each_report_their_own_outcome(
    policy: Policy,
) -> None:
    """20 dates, every message delivered once or twice (redeliveries racing their original), malformed ones
    among them, all at once in one task group on a store that yields on every update: each delivery reports
    what its own step decided (issue 7 took the outcome from the step; this is the test that holds it)."""
    rig = Rig(policy)
    rig.engine = Engine(
        lambda: policy,
        YieldingStore(rig.store),
        rig.publisher,
        rig.audit,
        rig.clock,
        EngineConfig(concurrent=True),
    )
    ts = "2025-12-31T06:00:00Z"
    dates = [f"2025-12-{day:02d}" for day in range(11, 31)]  # the 30th is overnight, the rest backfill
    deliveries: list[tuple[str, bytes]] = []
    for n, game_date in enumerate(dates):
        for name in PHASE2_CLASSES:
            body = json.dumps(message(name, "phase_2_raw", game_date, ts, output_table=f"ds.{name}")).encode()
            message_id = f"{game_date}/{name}"
            deliveries += [(message_id, body)] * (2 if (n + len(name)) % 3 == 0 else 1)
        deliveries.append((f"{game_date}/garbled", b"{not json"))
    random.Random(9).shuffle(deliveries)
    reported: defaultdict[str, list[Delivery]] = defaultdict(list)

    async def deliver(message_id: str, body: bytes) -> None:
        reported[message_id].append(await rig.engine.deliver(PHASE2_TOPIC, message_id, body, {}))

    async with anyio.create_task_group() as tasks:
        for message_id, body in deliveries:
            tasks.start_soon(deliver, message_id, body)
    sent = Counter(message_id for message_id, _ in deliveries)
    for message_id, outcomes in reported.items():
        if message_id.endswith("garbled"):
            assert outcomes == [Delivery.DEAD_LETTERED]
        else:  # whichever copy took the key's lock first routed it; every other copy is a duplicate
            assert sorted(outcomes) == sorted(
                [Delivery.ROUTED] + [Delivery.DUPLICATE] * (sent[message_id] - 1)
            )
    assert sum(len(o) for o in reported.values()) == len(deliveries)
    triggered = Counter(row["game_date"] for row in rig.rows("trigger"))
    assert triggered == Counter({"2025-12-30": 1})  # backfills wait for an operator
    assert len(rig.rows("input")) == len(dates) * len(PHASE2_CLASSES)


class TickingClock(VirtualClock):
    """Every reading is one second after the last, as if each await took a second."""

    def now(self) -> datetime:
        self.set(super().now() + timedelta(seconds=1))
        return super().now()


async def test_an_events_audit_rows_carry_the_time_it_was_decided_at_not_a_later_reading(
    policy: Policy,
) -> None:
    rig = Rig(policy)
    clock = TickingClock(NIGHT)
    rig.engine = Engine(lambda: policy, rig.store, rig.publisher, rig.audit, clock)
    ts = "2025-12-31T06:00:00Z"
    body = json.dumps(message("NbacGamebookProcessor", "phase_2_raw", "2025-12-30", ts)).encode()
    await rig.engine.deliver(PHASE2_TOPIC, "m-1", body, {})
    [decision] = rig.rows("decision")
    assert decision["at"] == iso_z(rig.engine.states[PHASE2].opened_at)
