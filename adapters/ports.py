"""The ports: one small Protocol per outside system, named by role.

Each has a real implementation (issue 3: Pub/Sub, Firestore, BigQuery) and an in-memory one in
`adapters.memory` with the same semantics. Both must pass the same contract tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol

from policies.breaker import Breaker
from policies.model import Mode
from router.keys import Key

AuditRow = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """Answer of `StateStore.claim_trigger`."""

    outcome: Literal["claimed", "published", "held"]
    lease_until: datetime | None = None
    published_at: datetime | None = None
    holder: str | None = None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the store knows about one key, for rebuilding an instance's memory at start."""

    key: Key
    mode: Mode | None
    published_at: datetime | None


class StateStore(Protocol):
    """Shared state across instances: recorded completions, pinned modes, trigger claims."""

    async def pin_mode(self, key: Key, mode: Mode, explicit: bool, now: datetime) -> Mode:
        """Pin `mode` unless one is pinned already (an explicit mode overrides). Returns the pinned mode."""
        ...

    async def record_completion(
        self, key: Key, completion_id: str, document: Mapping[str, Any], now: datetime
    ) -> bool:
        """Create-if-absent. True when this call created it; False for a redelivery."""
        ...

    async def claim_trigger(
        self, key: Key, trigger_id: str, instance_id: str, now: datetime, lease_s: float
    ) -> Claim:
        """Claim the right to publish `trigger_id`, or learn that it is published or held by a live lease."""
        ...

    async def completions(self, key: Key) -> list[Mapping[str, Any]]:
        """Every completion document recorded for `key` (any instance), in no particular order."""
        ...

    async def mark_published(self, key: Key, trigger_id: str, instance_id: str, now: datetime) -> None: ...

    async def release_claim(self, key: Key, trigger_id: str, instance_id: str) -> None:
        """Give the claim back after a failed publish so the key stays retriable (by anyone)."""
        ...

    async def recent(self, since: date) -> list[KeyRecord]:
        """Every key with a game date on or after `since` (its pinned mode and publish time)."""
        ...

    async def share_breaker(self, key: Key, breaker: Breaker, now: datetime) -> None:
        """Store the key's breaker (last writer wins; readers keep the most recently changed one)."""
        ...

    async def shared_breaker(self, key: Key) -> Breaker | None:
        """The breaker as last shared, or None."""
        ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for `Publisher.publish_many`."""

    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str | None = None


class Publisher(Protocol):
    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str | None = None
    ) -> str:
        """Publish one message; returns its id. Raises `PublishError` when it did not go through."""
        ...

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        """Publish several messages to one topic in as few requests as the backend allows (one, for the
        messages of one trigger); returns their ids in order. Raises `PublishError` when any did not go
        through: the caller retries the whole batch (consumers deduplicate by trigger id)."""
        ...


class AuditSink(Protocol):
    """Append-only audit log. `write` must never block routing on the backend being down."""

    async def write(self, rows: Sequence[AuditRow]) -> None: ...

    async def flush(self) -> None: ...
