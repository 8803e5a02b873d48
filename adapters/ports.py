"""The ports: one small Protocol per outside system, named by role.

Each has a real implementation (issue 3: Pub/Sub, Firestore, BigQuery) and an in-memory one in
`adapters.memory` with the same semantics. Both must pass the same contract tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from policies.model import Mode
from router.keys import Key
from router.shared import Claim, SharedKey

__all__ = [
    "AuditRow",
    "AuditSink",
    "Change",
    "Claim",
    "Journal",
    "Journaled",
    "KeyRecord",
    "Outgoing",
    "Publisher",
    "StateStore",
]

AuditRow = Mapping[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the store knows about one key, for rebuilding an instance's memory at start."""

    key: Key
    mode: Mode | None
    published_at: datetime | None


# A change to a key's shared record: the new record and an answer. Pure: a store may run it more than once.
Change = Callable[[SharedKey], tuple[SharedKey, T]]


class StateStore(Protocol):
    """Shared state across instances: one record per key (`router.shared.SharedKey`: recorded inputs, pinned
    mode, trigger claim, breaker) plus each completion's own document.

    `update` is the one way to change a record, and it is atomic: read (or reuse the copy this instance
    last wrote or read), apply `change`, write if it changed anything — conditional on nobody having written
    since; otherwise apply `change` again to the newer record. So an update decided on a record that every
    instance's earlier writes are in. The protocol steps (pin, record, claim, mark, release, share) are the
    pure functions of `router.shared`, for both stores alike; `adapters.record_ops` offers them one by one.
    """

    async def update(
        self,
        key: Key,
        change: Change[T],
        now: datetime | None,
        bodies: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> T:
        """Apply `change` atomically (see above) and return its answer. A completion the change adds to
        `inputs` also gets its own document: its summary plus its message body from `bodies` (by id).
        `now` sets the record's expiry (None: keep it). `fresh`: read the record even when this instance
        knows a recent copy (a decision that writes nothing, like a timer's, must see others' inputs).
        Raises `TransientError` when the store is unavailable, `PermanentInputError` when a document can
        never be stored."""
        ...

    async def completions(self, key: Key) -> list[Mapping[str, Any]]:
        """Every completion document recorded for `key` (any instance), in no particular order."""
        ...

    async def recent(self, since: date) -> list[KeyRecord]:
        """Every key with a game date on or after `since` (its pinned mode and publish time)."""
        ...


@dataclass(frozen=True, slots=True)
class Journaled:
    """One key as this instance decided it on its own while the store was down: its record as the store
    would hold it, and the message body of each completion recorded in it (by completion id)."""

    record: SharedKey
    bodies: Mapping[str, str]


class Journal(Protocol):
    """This instance's local, durable account of what it decided while the state store was down (its
    "outage mode"), kept until the store holds it. Calls are synchronous and durable on return: a completion
    is acked only after its key's record is in the journal."""

    def append(self, key: Key, record: SharedKey, bodies: Mapping[str, str]) -> None:
        """Keep `record` as the key's latest record (it includes every earlier one) and the new bodies."""
        ...

    def load(self) -> dict[Key, Journaled]:
        """Every key journaled since the last `clear`: its latest record and all its bodies."""
        ...

    def clear(self) -> None:
        """Forget everything: the store holds it now."""
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
