"""The consumer port: where delivered messages come from, and what ack/nack means.

`EventSource.run(handle)` pulls from every subscription until cancelled and calls `handle` once per delivery:
- `handle` returns          → ack (the completion is durably recorded, or the message was dead-lettered);
- `handle` raises `TransientError` → nack: Pub/Sub redelivers it (the store or a publish was unavailable);
- `handle` raises anything else    → nack and log: a bug must not lose a message nor stop the consumer.
Never more than `max_in_flight` handlers run at once. Deduplicating redeliveries is the handler's job (the
engine dedupes per key by message id); a source delivers at least once.

Two implementations share these semantics and one contract suite: `adapters.memory_pubsub.MemoryBroker`
and `adapters.pubsub.PubSubSource`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from adapters.errors import TransientError

log = logging.getLogger("cascade.source")


@dataclass(frozen=True, slots=True)
class Received:
    """One delivery of one message. A redelivery carries the same `message_id`."""

    topic: str
    subscription: str
    message_id: str
    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    publish_time: datetime | None = None
    delivery_attempt: int | None = None
    ordering_key: str | None = None


Handler = Callable[[Received], Awaitable[object]]


class EventSource(Protocol):
    async def run(self, handle: Handler) -> None:
        """Pull from every subscription until cancelled; ack when `handle` returns, nack when it raises."""
        ...


async def settle(handle: Handler, received: Received) -> bool:
    """Run `handle` for one delivery: True means ack, False means nack. Cancellation propagates."""
    try:
        await handle(received)
    except TransientError as exc:
        log.info(
            "nack %s on %s (attempt %s): %s",
            received.message_id,
            received.subscription,
            received.delivery_attempt,
            exc,
        )
        return False
    except Exception:
        # Not a routing decision but a bug or an unexpected failure: keep the message (redelivery) and keep
        # consuming; the log carries the traceback.
        log.exception("handler failed on %s from %s; nack", received.message_id, received.subscription)
        return False
    return True
