"""In-memory implementations of the ports, with the same semantics as the real ones.

They are real implementations (create-if-absent, claims with leases, publish failures), not mocks: replay
runs on them, and the contract tests hold them to the same behaviour as the emulator-backed adapters. Every
method completes without awaiting anything, so each call is atomic on the event loop, as a transaction is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from adapters.errors import PublishError, TransientError
from adapters.ports import AuditRow, Change, Journaled, KeyRecord, Outgoing, T
from adapters.record_ops import RecordOperations
from router.keys import Key
from router.records import completion_document
from router.shared import EMPTY, ClaimState, SharedKey


class SimulatedOutage:
    """`fail_next(n)`: the next n calls that check `_outage(...)` raise, as an outage of the backend would;
    `down = True`: every call raises until it is set back (a long outage)."""

    _failures_left: int = 0
    down: bool = False

    def fail_next(self, count: int) -> None:
        self._failures_left = count

    def _outage(self, error: type[Exception], message: str) -> None:
        if self._failures_left > 0:
            self._failures_left -= 1
            raise error(f"{message} (simulated outage)")
        self._unless_down(error, message)

    def _unless_down(self, error: type[Exception], message: str) -> None:
        if self.down:
            raise error(f"{message} (simulated outage)")


class MemoryStateStore(SimulatedOutage, RecordOperations):
    """`fail_next(n)` makes the next n updates raise `TransientError`, as a store outage would. An update
    completes without awaiting anything, so it is atomic on the event loop, as a conditional write is."""

    def __init__(self) -> None:
        self.keys: dict[Key, SharedKey] = {}
        self.documents: dict[Key, dict[str, Mapping[str, Any]]] = {}

    async def update(
        self,
        key: Key,
        change: Change[T],
        now: datetime | None,
        bodies: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> T:
        self._outage(TransientError, "state store unavailable during update")
        current = self.keys.get(key, EMPTY)
        new, answer = change(current)
        if new is not current:
            self.keys[key] = new
            if new.inputs is not current.inputs:
                self._keep_documents(key, current, new, bodies or {})
        return answer

    def _keep_documents(self, key: Key, old: SharedKey, new: SharedKey, bodies: Mapping[str, str]) -> None:
        kept = self.documents.setdefault(key, {})
        for completion_id in new.inputs.keys() - old.inputs.keys():
            kept[completion_id] = completion_document(new.inputs[completion_id], bodies.get(completion_id))

    async def completions(self, key: Key) -> list[Mapping[str, Any]]:
        self._unless_down(TransientError, "state store unavailable during completions")
        return list(self.documents.get(key, {}).values())

    async def recent(self, since: date) -> list[KeyRecord]:
        self._unless_down(TransientError, "state store unavailable during recent")
        return [
            KeyRecord(
                key, shared.mode, shared.published_at if shared.claim_state is ClaimState.PUBLISHED else None
            )
            for key, shared in sorted(self.keys.items())
            if key.game_date >= since
        ]


class MemoryJournal:
    """`Journal` in memory (replay and unit tests): what `append` kept, until `clear`."""

    def __init__(self) -> None:
        self.kept: dict[Key, Journaled] = {}

    def append(self, key: Key, record: SharedKey, bodies: Mapping[str, str]) -> None:
        earlier = self.kept.get(key)
        known = dict(earlier.bodies) if earlier is not None else {}
        self.kept[key] = Journaled(record, {**known, **bodies})

    def load(self) -> dict[Key, Journaled]:
        return dict(self.kept)

    def clear(self) -> None:
        self.kept.clear()


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
    requests: int = 0  # publish requests that went through (a batch is one)

    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str | None = None
    ) -> str:
        return (await self.publish_many(topic, [Outgoing(data, attributes, ordering_key)]))[0]

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        # One request: it fails or goes through whole, as a Pub/Sub publish request does.
        self._outage(PublishError, f"publish to {topic} failed")
        self.requests += 1
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
