"""In-memory implementations of the ports, with the same semantics as the real ones.

They are real implementations (create-if-absent, claims with leases, publish failures), not mocks: replay
runs on them, and the contract tests hold them to the same behaviour as the emulator-backed adapters. Every
method completes without awaiting anything, so each call is atomic on the event loop, as a transaction is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from adapters.errors import PublishError, TransientError
from adapters.ports import AuditRow, Claim, KeyRecord, Outgoing
from policies.breaker import Breaker, newer
from policies.model import Mode
from router.keys import Key


class SimulatedOutage:
    """`fail_next(n)`: the next n calls that check `_outage(...)` raise, as an outage of the backend would."""

    _failures_left: int = 0

    def fail_next(self, count: int) -> None:
        self._failures_left = count

    def _outage(self, error: type[Exception], message: str) -> None:
        if self._failures_left > 0:
            self._failures_left -= 1
            raise error(f"{message} (simulated outage)")


@dataclass
class _KeyDoc:
    mode: Mode | None = None
    mode_explicit: bool = False
    claim_state: str | None = None  # claimed | published
    holder: str | None = None
    lease_until: datetime | None = None
    published_at: datetime | None = None
    breaker: Breaker | None = None


class MemoryStateStore(SimulatedOutage):
    """`fail_next(n)` makes the next n writes raise `TransientError`, as a store outage would."""

    def __init__(self) -> None:
        self.keys: dict[Key, _KeyDoc] = {}
        self.documents: dict[Key, dict[str, dict[str, Any]]] = {}

    def _maybe_fail(self, operation: str) -> None:
        self._outage(TransientError, f"state store unavailable during {operation}")

    async def pin_mode(self, key: Key, mode: Mode, explicit: bool, now: datetime) -> Mode:
        doc = self.keys.setdefault(key, _KeyDoc())
        if doc.mode is None or (explicit and doc.mode != mode):
            doc.mode, doc.mode_explicit = mode, explicit
        return doc.mode

    async def record_completion(
        self, key: Key, completion_id: str, document: Mapping[str, Any], now: datetime
    ) -> bool:
        self._maybe_fail("record_completion")
        recorded = self.documents.setdefault(key, {})
        if completion_id in recorded:
            return False
        recorded[completion_id] = dict(document)
        return True

    async def completions(self, key: Key) -> list[Mapping[str, Any]]:
        # Read-only views, not copies: this runs before every decision (Engine._sync), callers never mutate.
        return list(self.documents.get(key, {}).values())

    async def claim_trigger(
        self, key: Key, trigger_id: str, instance_id: str, now: datetime, lease_s: float
    ) -> Claim:
        self._maybe_fail("claim_trigger")
        doc = self.keys.setdefault(key, _KeyDoc())
        if doc.claim_state == "published":
            return Claim("published", published_at=doc.published_at, holder=doc.holder)
        live = doc.lease_until is not None and doc.lease_until > now
        if doc.claim_state == "claimed" and doc.holder != instance_id and live:
            return Claim("held", lease_until=doc.lease_until, holder=doc.holder)
        doc.claim_state, doc.holder = "claimed", instance_id
        doc.lease_until = now + timedelta(seconds=lease_s)
        return Claim("claimed", lease_until=doc.lease_until, holder=instance_id)

    async def mark_published(self, key: Key, trigger_id: str, instance_id: str, now: datetime) -> None:
        doc = self.keys.setdefault(key, _KeyDoc())
        if doc.claim_state == "published":
            return  # another holder (after our lease ran out) published the same trigger_id first
        doc.claim_state, doc.holder, doc.published_at = "published", instance_id, now

    async def release_claim(self, key: Key, trigger_id: str, instance_id: str) -> None:
        doc = self.keys.get(key)
        if doc is not None and doc.claim_state == "claimed" and doc.holder == instance_id:
            doc.claim_state, doc.holder, doc.lease_until = None, None, None

    async def recent(self, since: date) -> list[KeyRecord]:
        return [
            KeyRecord(key, doc.mode, doc.published_at if doc.claim_state == "published" else None)
            for key, doc in sorted(self.keys.items())
            if key.game_date >= since
        ]

    async def share_breaker(self, key: Key, breaker: Breaker, now: datetime) -> None:
        self._maybe_fail("share_breaker")
        doc = self.keys.setdefault(key, _KeyDoc())
        doc.breaker = newer(breaker, doc.breaker) if doc.breaker is not None else breaker

    async def shared_breaker(self, key: Key) -> Breaker | None:
        doc = self.keys.get(key)
        return doc.breaker if doc is not None else None


@dataclass(frozen=True, slots=True)
class PublishedMessage:
    topic: str
    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str | None
    message_id: str


@dataclass
class MemoryPublisher(SimulatedOutage):
    """Records every message by topic. `fail_next(n)` makes the next n publishes fail, as an outage would."""

    messages: list[PublishedMessage] = field(default_factory=list)
    _failures_left: int = 0
    _counter: int = 0

    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str | None = None
    ) -> str:
        self._outage(PublishError, f"publish to {topic} failed")
        self._counter += 1
        message_id = f"mem-{self._counter}"
        self.messages.append(PublishedMessage(topic, data, dict(attributes), ordering_key, message_id))
        return message_id

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        # One request: it fails or goes through whole, as a Pub/Sub publish request does.
        self._outage(PublishError, f"publish to {topic} failed")
        ids = []
        for message in messages:
            self._counter += 1
            ids.append(f"mem-{self._counter}")
            self.messages.append(
                PublishedMessage(topic, message.data, dict(message.attributes), message.ordering_key, ids[-1])
            )
        return ids

    def on(self, topic: str) -> list[PublishedMessage]:
        return [m for m in self.messages if m.topic == topic]


@dataclass
class MemoryAuditSink:
    rows: list[AuditRow] = field(default_factory=list)

    async def write(self, rows: Sequence[AuditRow]) -> None:
        self.rows.extend(rows)

    async def flush(self) -> None:
        return None
