"""One contract for Pub/Sub, held against `MemoryBroker` and against the emulator-backed adapters.

The same tests run on both (`bus` is parametrised); only how long "not redelivered" must be watched differs:
the emulator redelivers an unacked message after its 10 s ack deadline, the memory broker at once.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import anyio
import pytest
from aiohttp import web

from adapters.clock import VirtualClock
from adapters.errors import ConfigurationError, PublishError, TransientError
from adapters.memory import MemoryAuditSink, MemoryStateStore
from adapters.memory_pubsub import MemoryBroker
from adapters.ports import Outgoing, Publisher
from adapters.pubsub import PubSubPublisher, PubSubSource, subscriber_client, subscription_path
from adapters.pubsub_admin import Admin, PubSubAdmin, completion_subscriptions, provision
from adapters.source import EventSource, Handler, Received
from ops.engine import Delivery, Engine, EngineConfig
from policies.model import Policy
from tests.support.builders import utc
from tests.support.emulators import Emulator


@dataclass
class Bus:
    kind: str
    publisher: Publisher
    admin: Admin
    make_source: Callable[[Mapping[str, str], int], EventSource]
    # How long a delivery that was not acked stays away before it is redelivered (the ack deadline).
    redelivery_s: float

    def source(self, subscriptions: Mapping[str, str], max_in_flight: int = 64) -> EventSource:
        return self.make_source(subscriptions, max_in_flight)

    async def topic_with_subscription(self, ordered: bool = False) -> tuple[str, str]:
        """A new topic and a subscription on it whose dead-letter topic is `{topic}-dlq` (also new)."""
        name = unique("t")
        await self.admin.ensure_topic(name)
        await self.admin.ensure_topic(f"{name}-dlq")
        await self.admin.ensure_subscription(
            f"{name}-sub", name, dead_letter_topic=f"{name}-dlq", ordered=ordered
        )
        return name, f"{name}-sub"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["memory", pytest.param("emulator", marks=pytest.mark.emulator)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        broker = MemoryBroker()
        yield Bus("memory", broker, broker, lambda subs, n: broker.source(subs, n), redelivery_s=0.2)
        return
    server = request.getfixturevalue("pubsub_server")
    api_root = f"http://{server.host_port}/v1"
    project = unique("contract")
    async with aiohttp.ClientSession() as session:
        publisher = PubSubPublisher(project, session=session, api_root=api_root, backoff_initial_s=0.05)

        def make_source(subs: Mapping[str, str], n: int) -> EventSource:
            return PubSubSource(project, subs, max_in_flight=n, session=session, api_root=api_root)

        yield Bus("emulator", publisher, PubSubAdmin(project, session, api_root), make_source, 11.0)


@asynccontextmanager
async def consuming(source: EventSource, handle: Handler) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(source.run, handle)
        yield
        tasks.cancel_scope.cancel()


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll until `condition` holds; fail after the deadline."""
    with anyio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


async def holds_for(condition: Callable[[], bool], duration_s: float) -> None:
    """Poll `condition` for `duration_s`; fail the moment it stops holding (watching for an absence)."""
    with anyio.move_on_after(duration_s):
        while True:
            assert condition()
            await anyio.sleep(0.05)
    assert condition()


class Recorder:
    """A handler that records deliveries; `fail` decides per delivery whether (and what) to raise."""

    def __init__(self, fail: Callable[[Received], BaseException | None] = lambda r: None) -> None:
        self.seen: list[Received] = []
        self._fail = fail

    async def __call__(self, received: Received) -> None:
        self.seen.append(received)
        error = self._fail(received)
        if error is not None:
            raise error

    def of(self, message_id: str) -> list[Received]:
        return [r for r in self.seen if r.message_id == message_id]


async def test_a_published_message_arrives_with_its_data_attributes_and_ordering_key(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription(ordered=True)
    recorder = Recorder()
    async with consuming(bus.source({sub: topic}), recorder):
        message_id = await bus.publisher.publish(
            topic, b'{"game_date": "2025-12-30"}', {"trigger_id": "t-1", "data": "x"}, "2025-12-30"
        )
        await eventually(lambda: len(recorder.seen) == 1)
    [got] = recorder.seen
    assert (got.topic, got.subscription, got.message_id) == (topic, sub, message_id)
    assert got.data == b'{"game_date": "2025-12-30"}'
    assert dict(got.attributes) == {"trigger_id": "t-1", "data": "x"}
    assert got.ordering_key == "2025-12-30"
    assert got.publish_time is not None


async def test_a_message_published_before_the_subscription_exists_is_not_delivered_to_it(bus: Bus) -> None:
    topic = unique("t")
    await bus.admin.ensure_topic(topic)
    await bus.publisher.publish(topic, b"early", {})
    await bus.admin.ensure_subscription(f"{topic}-sub", topic)
    recorder = Recorder()
    async with consuming(bus.source({f"{topic}-sub": topic}), recorder):
        await bus.publisher.publish(topic, b"late", {})
        await eventually(lambda: len(recorder.seen) >= 1)
    assert [r.data for r in recorder.seen] == [b"late"]


async def test_a_handled_message_is_acked_and_not_redelivered(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription()
    recorder = Recorder()
    async with consuming(bus.source({sub: topic}), recorder):
        message_id = await bus.publisher.publish(topic, b"once", {})
        await eventually(lambda: len(recorder.seen) == 1)
        await holds_for(lambda: len(recorder.of(message_id)) == 1, bus.redelivery_s)


async def test_a_handler_running_past_the_ack_deadline_keeps_the_message(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription()
    finished = anyio.Event()

    async def slow(received: Received) -> None:
        recorder.seen.append(received)
        await anyio.sleep(bus.redelivery_s * 1.3)  # the work outlasts the ack deadline
        finished.set()

    recorder = Recorder()
    async with consuming(bus.source({sub: topic}), slow):
        message_id = await bus.publisher.publish(topic, b"slow", {})
        with anyio.fail_after(bus.redelivery_s + 10):
            await finished.wait()
    assert len(recorder.of(message_id)) == 1


async def test_a_transient_error_is_nacked_and_redelivered_with_the_attempt_counted(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription()
    recorder = Recorder(lambda r: TransientError("store down") if len(recorder.seen) < 3 else None)
    async with consuming(bus.source({sub: topic}), recorder):
        message_id = await bus.publisher.publish(topic, b"retry me", {"k": "v"})
        await eventually(lambda: len(recorder.seen) == 3)
        await holds_for(lambda: len(recorder.seen) == 3, 0.3)
    assert [r.message_id for r in recorder.seen] == [message_id] * 3
    assert all(r.data == b"retry me" and dict(r.attributes) == {"k": "v"} for r in recorder.seen)
    assert [r.delivery_attempt for r in recorder.seen] == [1, 2, 3]


async def test_a_message_nacked_max_delivery_attempts_times_is_forwarded_to_the_dead_letter_topic(
    bus: Bus,
) -> None:
    topic, sub = await bus.topic_with_subscription()  # max_delivery_attempts=5
    await bus.admin.ensure_subscription(f"{topic}-dlq-sub", f"{topic}-dlq")
    failing = Recorder(lambda r: TransientError("store down"))
    letters = Recorder()
    async with (
        consuming(bus.source({sub: topic}), failing),
        consuming(bus.source({f"{topic}-dlq-sub": f"{topic}-dlq"}), letters),
    ):
        await bus.publisher.publish(topic, b"poison", {"k": "v"})
        await eventually(lambda: len(letters.seen) == 1)
    assert [r.delivery_attempt for r in failing.seen] == [1, 2, 3, 4, 5]
    [letter] = letters.seen
    assert letter.data == b"poison"
    assert letter.attributes["k"] == "v"
    assert letter.attributes["CloudPubSubDeadLetterSourceSubscription"] == sub
    assert letter.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"


async def test_an_unexpected_exception_is_redelivered_and_the_consumer_keeps_running(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription()
    recorder = Recorder(
        lambda r: RuntimeError("bug") if r.data == b"first" and len(recorder.seen) == 1 else None
    )
    async with consuming(bus.source({sub: topic}), recorder):
        first = await bus.publisher.publish(topic, b"first", {})
        await eventually(lambda: len(recorder.of(first)) == 2)
        second = await bus.publisher.publish(topic, b"second", {})
        await eventually(lambda: len(recorder.of(second)) == 1)


async def test_flow_control_never_runs_more_than_max_in_flight_handlers(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription()
    limit, total = 3, 8
    release = anyio.Event()
    active, peak, done = 0, 0, 0

    async def held(received: Received) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        try:
            await release.wait()
        finally:
            active -= 1
        done += 1

    async with consuming(bus.source({sub: topic}, max_in_flight=limit), held):
        for n in range(total):
            await bus.publisher.publish(topic, f"m{n}".encode(), {})
        await eventually(lambda: active == limit)
        await holds_for(lambda: peak == limit, 0.5)
        release.set()
        await eventually(lambda: done == total)
    assert peak == limit


async def test_publishing_to_a_missing_topic_raises_publish_error(bus: Bus) -> None:
    with pytest.raises(PublishError):
        await bus.publisher.publish(unique("missing"), b"x", {})


async def test_publish_many_returns_the_ids_in_order_and_every_message_arrives_whole(bus: Bus) -> None:
    topic, sub = await bus.topic_with_subscription(ordered=True)
    batch = [
        Outgoing(f'{{"n": {n}}}'.encode(), {"trigger_id": "t-1", "n": str(n)}, "2025-12-30") for n in range(5)
    ]
    recorder = Recorder()
    async with consuming(bus.source({sub: topic}), recorder):
        ids = await bus.publisher.publish_many(topic, batch)
        await eventually(lambda: len(recorder.seen) == len(batch))
    assert len(set(ids)) == len(batch)
    by_id = {r.message_id: r for r in recorder.seen}
    # The i-th id is the i-th message's, and one ordering key keeps them in publish order.
    assert [(by_id[i].data, dict(by_id[i].attributes), by_id[i].ordering_key) for i in ids] == [
        (m.data, dict(m.attributes), m.ordering_key) for m in batch
    ]
    assert [r.message_id for r in recorder.seen] == ids


async def test_publish_many_to_a_missing_topic_raises_publish_error(bus: Bus) -> None:
    with pytest.raises(PublishError):
        await bus.publisher.publish_many(unique("missing"), [Outgoing(b"a", {}), Outgoing(b"b", {})])


async def test_a_memory_publish_many_that_fails_delivers_none_of_its_messages_and_a_retry_all() -> None:
    broker = MemoryBroker()
    broker.create_topic("t-outage")
    broker.create_subscription("t-outage-sub", "t-outage")
    batch = [Outgoing(f"m{n}".encode(), {"n": str(n)}) for n in range(3)]
    broker.fail_next(1)
    with pytest.raises(PublishError):
        await broker.publish_many("t-outage", batch)
    assert broker.on("t-outage") == [] and broker.backlog("t-outage-sub") == 0  # one request: all or none
    ids = await broker.publish_many("t-outage", batch)
    assert [m.message_id for m in broker.on("t-outage")] == ids
    assert broker.backlog("t-outage-sub") == len(batch)


async def test_provisioning_is_idempotent_and_refuses_a_subscription_on_another_topic(
    bus: Bus, policy: Policy
) -> None:
    first = await provision(bus.admin, policy)
    again = await provision(bus.admin, policy)
    assert first.existing == [] and sorted(again.existing) == sorted(first.created)
    assert "topic nba-slo-violation" in first.created
    assert "subscription cascade-dead-letter-audit" in first.created
    assert "subscription cascade-nba-phase2-raw-complete" in first.created
    with pytest.raises(ConfigurationError):
        await bus.admin.ensure_subscription("cascade-nba-phase2-raw-complete", "nba-phase3-trigger")


async def test_a_malformed_completion_is_dead_lettered_with_its_reason_and_the_original_acked(
    bus: Bus, policy: Policy
) -> None:
    # The policy's fixed topic names: the memory broker is new per test, the emulator project is unique.
    await provision(bus.admin, policy)
    engine = Engine(
        lambda: policy,
        MemoryStateStore(),
        bus.publisher,
        MemoryAuditSink(),
        VirtualClock(utc("2025-12-31T06:00")),
        EngineConfig(),
    )
    outcomes: list[tuple[str, Delivery]] = []

    async def route(received: Received) -> None:
        delivery = await engine.deliver(
            received.topic, received.message_id, received.data, received.attributes
        )
        outcomes.append((received.message_id, delivery))

    letters = Recorder()
    completions = bus.source(completion_subscriptions(policy))
    audit = bus.source({"cascade-dead-letter-audit": "cascade-dead-letter"})
    async with consuming(completions, route), consuming(audit, letters):
        original = await bus.publisher.publish("nba-phase2-raw-complete", b"{not json", {"origin": "test"})
        await eventually(lambda: len(letters.seen) == 1)
        await holds_for(lambda: len(outcomes) == 1, bus.redelivery_s)
    assert outcomes == [(original, Delivery.DEAD_LETTERED)]
    [letter] = letters.seen
    assert letter.data == b"{not json"
    assert letter.attributes["origin"] == "test"
    assert letter.attributes["source_topic"] == "nba-phase2-raw-complete"
    assert letter.attributes["message_id"] == original
    assert "json" in letter.attributes["reason"].lower()


# --- the real publisher's retries, against a scripted HTTP server (no emulator needed) ------------------


@asynccontextmanager
async def scripted_pubsub(statuses: list[int]) -> AsyncIterator[tuple[str, list[int]]]:
    """A stand-in Pub/Sub answering publishes with `statuses` in turn, then 200. Yields (api_root, seen)."""
    seen: list[int] = []

    async def publish(request: web.Request) -> web.Response:
        status = statuses[len(seen)] if len(seen) < len(statuses) else 200
        seen.append(status)
        if status != 200:
            return web.json_response({"error": {"code": status}}, status=status)
        return web.json_response({"messageIds": ["42"]})

    app = web.Application()
    app.router.add_post("/v1/projects/p/topics/{topic}", publish)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("statuses", "outcome", "requests"),
    [
        ([503, 429], "42", 3),  # transient twice, then through
        ([500] * 5, PublishError, 5),  # every attempt failed: reported, never success
        ([404], PublishError, 1),  # missing topic: not retried
        ([403], PublishError, 1),  # permission: not retried
    ],
)
async def test_the_publisher_retries_transient_failures_only_and_reports_the_final_one(
    statuses: list[int], outcome: str | type[Exception], requests: int
) -> None:
    async with scripted_pubsub(statuses) as (api_root, seen), aiohttp.ClientSession() as session:
        publisher = PubSubPublisher("p", session=session, api_root=api_root, backoff_initial_s=0.01)
        if isinstance(outcome, str):
            assert await publisher.publish("topic", b"x", {"a": "b"}, "2025-12-30") == outcome
        else:
            with pytest.raises(outcome):
                await publisher.publish("topic", b"x", {"a": "b"}, "2025-12-30")
    assert len(seen) == requests


@pytest.mark.emulator
async def test_a_message_taken_by_a_consumer_that_died_without_acking_is_redelivered_after_its_deadline(
    pubsub_server: Emulator,
) -> None:
    api_root = f"http://{pubsub_server.host_port}/v1"
    project = unique("crash")
    async with aiohttp.ClientSession() as session:
        admin = PubSubAdmin(project, session, api_root)
        topic = unique("t")
        await admin.ensure_topic(topic)
        await admin.ensure_subscription(f"{topic}-sub", topic, 10)
        publisher = PubSubPublisher(project, session=session, api_root=api_root)
        message_id = await publisher.publish(topic, b"completion", {"k": "v"})
        # A consumer pulls the message and dies: no ack, no nack, no lease extension.
        dead = subscriber_client(session, api_root)
        taken = await dead.pull(subscription_path(project, f"{topic}-sub"), 1, timeout=30)
        assert [m.message_id for m in taken] == [message_id]
        recorder = Recorder()
        source = PubSubSource(project, {f"{topic}-sub": topic}, session=session, api_root=api_root)
        async with consuming(source, recorder):
            await eventually(lambda: bool(recorder.of(message_id)), timeout_s=30)
    [redelivered] = recorder.of(message_id)
    assert redelivered.data == b"completion" and redelivered.attributes == {"k": "v"}
