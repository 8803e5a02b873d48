"""An in-memory Pub/Sub with the semantics cascade relies on, for tests and replay-style runs.

- Topics and subscriptions must exist: publishing to a missing topic raises `PublishError` (Pub/Sub: 404).
- A subscription receives only what is published after it was created, each message once per subscription.
- At-least-once: a nacked message is redelivered; a message handed out but not settled when its source
  stops is redelivered to the next source.
- With a dead-letter policy (as on Pub/Sub): `delivery_attempt` counts the deliveries (None without one), and
  a message nacked `max_delivery_attempts` times is forwarded to the dead-letter topic with the
  `CloudPubSubDeadLetterSource*` attributes the emulator adds, and leaves the subscription.
- There is no ack deadline: a delivery stays outstanding while its handler runs (the real adapter extends
  the deadline for the same effect).

Every method that changes state completes without awaiting, so it is atomic on the event loop.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio

from adapters.errors import ConfigurationError, PublishError
from adapters.memory import PublishedMessage, SimulatedOutage
from adapters.ports import Outgoing
from adapters.source import EventSource, Handler, Received, settle


@dataclass
class _Delivery:
    message: PublishedMessage
    published_at: datetime
    attempts: int = 0


@dataclass
class _Subscription:
    name: str
    topic: str
    dead_letter_topic: str | None = None
    max_delivery_attempts: int = 5
    ready: deque[_Delivery] = field(default_factory=deque)
    outstanding: dict[int, _Delivery] = field(default_factory=dict)


class MemoryBroker(SimulatedOutage):
    """Topics, subscriptions, a `Publisher`, and `source()` for an `EventSource` over some subscriptions.

    `fail_next(n)` makes the next n publishes fail, as an outage would (like `MemoryPublisher`).
    """

    def __init__(self) -> None:
        self.messages: list[PublishedMessage] = []
        self._topics: dict[str, list[str]] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._failures_left = 0
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self._changed = anyio.Event()

    # --- admin ------------------------------------------------------------------------------------------

    def create_topic(self, name: str) -> bool:
        """Idempotent; True when this call created it."""
        if name in self._topics:
            return False
        self._topics[name] = []
        return True

    def create_subscription(
        self, name: str, topic: str, dead_letter_topic: str | None = None, max_delivery_attempts: int = 5
    ) -> bool:
        """Idempotent; True when this call created it. The topic must exist; an existing subscription on
        another topic is a `ConfigurationError` (as with `PubSubAdmin`)."""
        if topic not in self._topics:
            raise ConfigurationError(f"topic {topic} does not exist")
        existing = self._subscriptions.get(name)
        if existing is not None:
            if existing.topic != topic:
                raise ConfigurationError(f"subscription {name} exists on topic {existing.topic}, not {topic}")
            return False
        if dead_letter_topic is not None and dead_letter_topic not in self._topics:
            raise ConfigurationError(f"dead-letter topic {dead_letter_topic} does not exist")
        self._subscriptions[name] = _Subscription(name, topic, dead_letter_topic, max_delivery_attempts)
        self._topics[topic].append(name)
        return True

    async def ensure_topic(self, name: str) -> bool:
        """The provisioning interface of `adapters.pubsub_admin.Admin`."""
        return self.create_topic(name)

    async def ensure_subscription(
        self,
        name: str,
        topic: str,
        ack_deadline_s: int = 10,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        ordered: bool = False,
        retry_backoff_s: tuple[int, int] | None = None,
    ) -> bool:
        """As `create_subscription`. No ack deadline and no retry backoff here: a nack redelivers at once."""
        return self.create_subscription(name, topic, dead_letter_topic, max_delivery_attempts)

    async def ensure_never_expires(self, name: str) -> bool:
        """The provisioning interface: a memory subscription never expires, so there is nothing to change."""
        return False

    # --- Publisher --------------------------------------------------------------------------------------

    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str | None = None
    ) -> str:
        return (await self.publish_many(topic, [Outgoing(data, attributes, ordering_key)]))[0]

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        # One request: it fails or goes through whole, as a Pub/Sub publish request does.
        self._outage(PublishError, f"publish to {topic} failed")
        if topic not in self._topics:
            raise PublishError(f"publish to {topic} failed: topic not found")
        now = datetime.now(UTC)
        ids = []
        for outgoing in messages:
            message = PublishedMessage(
                topic,
                outgoing.data,
                dict(outgoing.attributes),
                outgoing.ordering_key or None,
                str(next(self._ids)),
            )
            self.messages.append(message)
            ids.append(message.message_id)
            for name in self._topics[topic]:
                self._subscriptions[name].ready.append(_Delivery(message, now))
        self._notify()
        return ids

    def on(self, topic: str) -> list[PublishedMessage]:
        return [m for m in self.messages if m.topic == topic]

    # --- consuming --------------------------------------------------------------------------------------

    def source(self, subscriptions: Mapping[str, str], max_in_flight: int = 64) -> EventSource:
        """An `EventSource` over `subscriptions` (subscription name → topic name, as for `PubSubSource`)."""
        for name, topic in subscriptions.items():
            sub = self._subscriptions.get(name)
            if sub is None or sub.topic != topic:
                raise ConfigurationError(f"subscription {name} on topic {topic} does not exist")
        return _MemorySource(self, tuple(subscriptions), max_in_flight)

    def backlog(self, subscription: str) -> int:
        """Messages not yet acked on `subscription` (waiting or being handled)."""
        sub = self._subscriptions[subscription]
        return len(sub.ready) + len(sub.outstanding)

    async def idle(self, timeout_s: float = 5.0) -> None:
        """Wait until every subscription acked everything it received; `TimeoutError` after the deadline."""
        with anyio.fail_after(timeout_s):
            while any(self.backlog(name) for name in self._subscriptions):
                await self._changed.wait()

    # --- used by _MemorySource --------------------------------------------------------------------------

    def _notify(self) -> None:
        # Wake every waiter; they re-check their condition against the new state.
        self._changed.set()
        self._changed = anyio.Event()

    async def _take(self, subscription: str) -> tuple[int, _Delivery]:
        sub = self._subscriptions[subscription]
        while not sub.ready:
            await self._changed.wait()
        delivery = sub.ready.popleft()
        delivery.attempts += 1
        token = next(self._tokens)
        sub.outstanding[token] = delivery
        return token, delivery

    def _counts(self, subscription: str) -> bool:
        return self._subscriptions[subscription].dead_letter_topic is not None

    def _settle(self, subscription: str, token: int, ack: bool) -> None:
        sub = self._subscriptions[subscription]
        delivery = sub.outstanding.pop(token, None)
        if delivery is not None and not ack:
            if sub.dead_letter_topic is not None and delivery.attempts >= sub.max_delivery_attempts:
                self._forward(sub, delivery)
            else:
                sub.ready.append(delivery)
        self._notify()

    def _forward(self, sub: _Subscription, delivery: _Delivery) -> None:
        assert sub.dead_letter_topic is not None
        original = delivery.message
        attributes = {
            **original.attributes,
            "CloudPubSubDeadLetterSourceDeliveryCount": str(delivery.attempts),
            "CloudPubSubDeadLetterSourceSubscription": sub.name,
        }
        message = PublishedMessage(
            sub.dead_letter_topic, original.data, attributes, original.ordering_key, str(next(self._ids))
        )
        self.messages.append(message)
        now = datetime.now(UTC)
        for name in self._topics[sub.dead_letter_topic]:
            self._subscriptions[name].ready.append(_Delivery(message, now))


class _MemorySource:
    def __init__(self, broker: MemoryBroker, subscriptions: tuple[str, ...], max_in_flight: int) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._broker = broker
        self._subscriptions = subscriptions
        self._max_in_flight = max_in_flight

    async def run(self, handle: Handler) -> None:
        slots = anyio.Semaphore(self._max_in_flight)
        async with anyio.create_task_group() as tasks:
            for name in self._subscriptions:
                tasks.start_soon(self._pull, name, handle, slots, tasks)

    async def _pull(
        self, subscription: str, handle: Handler, slots: anyio.Semaphore, tasks: anyio.abc.TaskGroup
    ) -> None:
        while True:
            # Take a slot before taking a message, so nothing is handed out that cannot start at once.
            await slots.acquire()
            try:
                token, delivery = await self._broker._take(subscription)
            except BaseException:
                slots.release()
                raise
            tasks.start_soon(self._handle_one, subscription, token, delivery, handle, slots)

    async def _handle_one(
        self,
        subscription: str,
        token: int,
        delivery: _Delivery,
        handle: Handler,
        slots: anyio.Semaphore,
    ) -> None:
        message = delivery.message
        received = Received(
            topic=message.topic,
            subscription=subscription,
            message_id=message.message_id,
            data=message.data,
            attributes=dict(message.attributes),
            publish_time=delivery.published_at,
            delivery_attempt=delivery.attempts if self._broker._counts(subscription) else None,
            ordering_key=message.ordering_key,
        )
        ack = False
        try:
            ack = await settle(handle, received)
        finally:
            # Also on cancellation: an unsettled delivery goes back to be redelivered.
            self._broker._settle(subscription, token, ack)
            slots.release()
