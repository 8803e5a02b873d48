"""A `Publisher` whose best-effort notifications (status announcements, alerts) wait briefly for company.

Messages to the chosen topics are queued and sent with `publish_many`, one request per topic, when
`batch_max` wait or the oldest has waited `max_wait_s` (`adapters.batching`, the rule the ack batcher and
the BigQuery flusher share). Everything else — triggers, dead letters — goes straight through, with its
errors: a trigger's outcome and a dead letter's fate must be known when the call returns. A queued
notification that cannot be sent is logged and dropped: its row is in the audit log either way.

Run `run()` in the task group and call `flush()` on shutdown.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence

import anyio

from adapters.batching import due_in_s
from adapters.errors import PublishError
from adapters.ports import Outgoing, Publisher

log = logging.getLogger("cascade.pubsub")


class BatchedTopics:
    def __init__(
        self,
        publisher: Publisher,
        topics: Collection[str],
        batch_max: int = 100,
        max_wait_s: float = 0.2,
        now_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self._topics = frozenset(topics)
        self._batch_max = batch_max
        self._max_wait_s = max_wait_s
        self._now_s = now_s
        self._queued: defaultdict[str, list[Outgoing]] = defaultdict(list)
        self._oldest_since: float | None = None
        self._wakeup = anyio.Event()
        self.dropped = 0

    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str | None = None
    ) -> str:
        if topic not in self._topics:
            return await self._publisher.publish(topic, data, attributes, ordering_key)
        self._queued[topic].append(Outgoing(data, attributes, ordering_key))
        if self._oldest_since is None:
            self._oldest_since = self._now_s()
        self._wakeup.set()
        return ""  # queued: Pub/Sub assigns the id when the batch goes out

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        return await self._publisher.publish_many(topic, messages)

    def due_in_s(self) -> float | None:
        waiting = sum(len(queue) for queue in self._queued.values())
        return due_in_s(waiting, self._oldest_since, self._now_s(), self._batch_max, self._max_wait_s)

    async def run(self) -> None:
        """Send each batch when it is due; until cancelled (then call `flush()`)."""
        while True:
            wait_s = self.due_in_s()
            if wait_s is None:
                await self._wakeup.wait()
                self._wakeup = anyio.Event()
                continue
            if wait_s > 0:
                with anyio.move_on_after(wait_s):
                    await self._wakeup.wait()  # woken early when a batch may have filled
                self._wakeup = anyio.Event()
                continue
            await self.flush()

    async def flush(self) -> None:
        """Send everything queued now, one request per topic."""
        queued, self._queued, self._oldest_since = self._queued, defaultdict(list), None
        for topic, messages in queued.items():
            try:
                await self._publisher.publish_many(topic, messages)
            except PublishError as exc:
                self.dropped += len(messages)
                log.warning(
                    "%d notification(s) not sent to %s (kept in the audit log): %s", len(messages), topic, exc
                )
