"""The `StateStore` on Firestore: shared state, so several cascade instances never double-trigger.

Layout (no hot spots: a completion is its own document, the state document is written a few times a day):

    {collection}/{transition}_{game_date}                    state: mode, mode_explicit, claim_state, holder,
                                                             trigger_id, lease_until, published_at
    {collection}/{transition}_{game_date}/completions/{id}   one recorded completion, created if absent

Trigger claim protocol, each step one transaction on the state document:
    claim_trigger   published → "published"; claimed by another holder whose lease is live → "held";
                    otherwise claim_state=claimed, holder=this instance, lease_until=now+lease_s → "claimed"
    (the engine publishes)
    mark_published  claim_state=published, published_at (idempotent: the first mark is kept)
    release_claim   after a failed publish, the holder's claim is removed so anyone may claim again
An instance that dies holding a claim blocks the key only until the lease runs out; whoever claims next
re-publishes the same trigger_id (at least once, never a second trigger id).

Every write sets `expire_at = now + ttl_days` for a Firestore TTL policy on that field (so a completion's own
top-level `expire_at` field is overwritten). `release_claim` has no `now`, so it leaves `expire_at` as the
claim set it (at most one lease earlier).

Transactions that contend on one document are very slow (the emulator's lock timeout is 2 s), so calls for
one key are serialised inside the process with a lock per key; across processes the transaction decides.
Every call is bounded by `timeout_s`. Outages and timeouts become `TransientError`; a completion Firestore
cannot hold becomes `PermanentInputError`; bugs propagate.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar, cast
from urllib.parse import quote

import anyio
import grpc  # type: ignore[import-untyped]  # no stubs in the venv; only grpc.RpcError is used
from google.api_core import exceptions as gexc
from google.auth.exceptions import TransportError
from google.cloud.firestore import AsyncClient, AsyncTransaction, async_transactional
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.base_query import FieldFilter

from adapters.errors import PermanentInputError, TransientError
from adapters.ports import Claim, KeyRecord
from policies.breaker import Breaker, BreakerState, newer
from policies.model import Mode
from router.keys import Key

T = TypeVar("T")
Fields = dict[str, Any]
# A pure decision over the state document: the fields to merge into it (None: no write) and the answer.
# Pure, because the transaction runs it again when Firestore aborts an attempt.
Decide = Callable[[Fields], tuple[Fields | None, T]]

EXPIRE_AT = "expire_at"
COMPLETIONS = "completions"
CLAIMED: Final = "claimed"
PUBLISHED: Final = "published"

_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.Aborted,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.Unknown,
    gexc.RetryError,
    grpc.RpcError,
    TransportError,
)


def firestore_client(project: str, database: str = "(default)") -> AsyncClient:
    """The Firestore client. With FIRESTORE_EMULATOR_HOST set the library talks to that emulator instead."""
    return AsyncClient(project=project, database=database)


class FirestoreStateStore:
    def __init__(
        self,
        client: AsyncClient,
        collection: str = "cascade_dates",
        ttl_days: int = 7,
        timeout_s: float = 10.0,
    ) -> None:
        self.collection = collection
        self._dates = client.collection(collection)
        self._client = client
        self._ttl = timedelta(days=ttl_days)
        self._timeout_s = timeout_s
        # Weak: a key's lock lives only while some call holds or waits for it, so the map never grows.
        self._locks: weakref.WeakValueDictionary[Key, anyio.Lock] = weakref.WeakValueDictionary()

    # --- layout -----------------------------------------------------------------------------------------

    def state_ref(self, key: Key) -> AsyncDocumentReference:
        name = _document_id(f"{key.transition}_{key.game_date.isoformat()}")
        return self._dates.document(name)

    def completion_ref(self, key: Key, completion_id: str) -> AsyncDocumentReference:
        completions = self.state_ref(key).collection(COMPLETIONS)  # typed Any by the library
        return cast(AsyncDocumentReference, completions.document(_document_id(completion_id)))

    # --- the port ---------------------------------------------------------------------------------------

    async def pin_mode(self, key: Key, mode: Mode, explicit: bool, now: datetime) -> Mode:
        return await self._transact("pin_mode", key, lambda doc: _pin(doc, mode, explicit), now)

    async def record_completion(
        self, key: Key, completion_id: str, document: Mapping[str, Any], now: datetime
    ) -> bool:
        async with self._guard("record_completion"):
            try:
                await self.completion_ref(key, completion_id).create({**document, **self._expiry(now)})
            except gexc.AlreadyExists:
                return False  # a redelivery, or our own earlier attempt whose answer was lost
            except (gexc.InvalidArgument, ValueError) as exc:
                # Values Firestore cannot hold (an array in an array, an empty field name, an int beyond 64
                # bits, a value over 1 MiB): this message can never be recorded here.
                raise PermanentInputError(
                    f"Firestore cannot store completion {completion_id}: {exc}"
                ) from exc
        return True

    async def completions(self, key: Key) -> list[Mapping[str, Any]]:
        async with self._guard("completions"):
            stream = self.state_ref(key).collection(COMPLETIONS).stream()
            documents = [snapshot.to_dict() or {} async for snapshot in stream]
        return [_as_given(document) for document in documents]

    async def claim_trigger(
        self, key: Key, trigger_id: str, instance_id: str, now: datetime, lease_s: float
    ) -> Claim:
        lease_until = now + timedelta(seconds=lease_s)
        return await self._transact(
            "claim_trigger", key, lambda doc: _claim(doc, trigger_id, instance_id, now, lease_until), now
        )

    async def mark_published(self, key: Key, trigger_id: str, instance_id: str, now: datetime) -> None:
        await self._transact("mark_published", key, lambda doc: _mark(doc, trigger_id, instance_id, now), now)

    async def release_claim(self, key: Key, trigger_id: str, instance_id: str) -> None:
        await self._transact("release_claim", key, lambda doc: _release(doc, instance_id), None)

    async def recent(self, since: date) -> list[KeyRecord]:
        async with self._guard("recent"):
            query = self._dates.where(filter=FieldFilter("game_date", ">=", since.isoformat()))
            documents = [snapshot.to_dict() or {} async for snapshot in query.stream()]
        return [_record(doc) for doc in documents if doc.get("transition") and doc.get("game_date")]

    async def share_breaker(self, key: Key, breaker: Breaker, now: datetime) -> None:
        await self._transact("share_breaker", key, lambda doc: _share(doc, breaker), now)

    async def shared_breaker(self, key: Key) -> Breaker | None:
        async with self._guard("shared_breaker", key):
            snapshot = await self.state_ref(key).get()
        return _breaker_of(snapshot.to_dict() or {})

    # --- machinery --------------------------------------------------------------------------------------

    async def _transact(self, operation: str, key: Key, decide: Decide[T], now: datetime | None) -> T:
        """Read the state document, decide, merge the changes (with `expire_at` when `now` is known)."""
        ref = self.state_ref(key)
        identity = {"transition": key.transition, "game_date": key.game_date.isoformat()}

        @async_transactional
        async def attempt(transaction: AsyncTransaction) -> T:
            snapshot = await ref.get(transaction=transaction)
            changes, answer = decide(snapshot.to_dict() or {})
            if changes is not None:
                expiry = self._expiry(now) if now is not None else {}
                transaction.set(ref, {**identity, **changes, **expiry}, merge=True)
            return answer

        async with self._guard(operation, key):
            return await attempt(self._client.transaction())

    @asynccontextmanager
    async def _guard(self, operation: str, key: Key | None = None) -> AsyncIterator[None]:
        """Bound the call by `timeout_s`, serialise it per key, translate vendor errors."""
        scope = anyio.CancelScope(deadline=anyio.current_time() + self._timeout_s)
        try:
            with scope:
                async with self._serialised(key):
                    yield
        except Exception as exc:
            replacement = _translated(exc, operation, timed_out=scope.cancel_called)
            if replacement is exc:
                raise
            raise replacement from exc
        if scope.cancelled_caught:
            raise TransientError(f"Firestore did not complete {operation} within {self._timeout_s} s")

    @asynccontextmanager
    async def _serialised(self, key: Key | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            yield

    def _expiry(self, now: datetime) -> Fields:
        return {EXPIRE_AT: now + self._ttl}


# --- the decisions (pure; MemoryStateStore's semantics) -------------------------------------------------


def _pin(doc: Fields, mode: Mode, explicit: bool) -> tuple[Fields | None, Mode]:
    pinned = doc.get("mode")
    if pinned is None or (explicit and pinned != mode):
        return {"mode": mode.value, "mode_explicit": explicit}, mode
    return None, Mode(pinned)


def _claim(
    doc: Fields, trigger_id: str, instance_id: str, now: datetime, lease_until: datetime
) -> tuple[Fields | None, Claim]:
    state, holder, lease = doc.get("claim_state"), doc.get("holder"), _plain(doc.get("lease_until"))
    if state == PUBLISHED:
        return None, Claim(PUBLISHED, published_at=_plain(doc.get("published_at")), holder=holder)
    if state == CLAIMED and holder != instance_id and lease is not None and lease > now:
        return None, Claim("held", lease_until=lease, holder=holder)
    changes = {
        "claim_state": CLAIMED,
        "holder": instance_id,
        "trigger_id": trigger_id,
        "lease_until": lease_until,
    }
    return changes, Claim(CLAIMED, lease_until=lease_until, holder=instance_id)


def _mark(doc: Fields, trigger_id: str, instance_id: str, now: datetime) -> tuple[Fields | None, None]:
    if doc.get("claim_state") == PUBLISHED:
        return None, None  # another holder (after our lease ran out) published the same trigger_id first
    return {
        "claim_state": PUBLISHED,
        "holder": instance_id,
        "trigger_id": trigger_id,
        "published_at": now,
    }, None


def _release(doc: Fields, instance_id: str) -> tuple[Fields | None, None]:
    if doc.get("claim_state") == CLAIMED and doc.get("holder") == instance_id:
        return {"claim_state": None, "holder": None, "lease_until": None}, None
    return None, None  # published, never claimed, or claimed by someone else since our lease ran out


# --- values and errors ----------------------------------------------------------------------------------


def _record(doc: Fields) -> KeyRecord:
    key = Key(date.fromisoformat(doc["game_date"]), doc["transition"])
    published = _plain(doc.get("published_at")) if doc.get("claim_state") == "published" else None
    return KeyRecord(key, Mode(doc["mode"]) if doc.get("mode") else None, published)


def _share(doc: Fields, breaker: Breaker) -> tuple[Fields | None, None]:
    stored = _breaker_of(doc)
    if stored is not None and newer(breaker, stored) is stored and stored != breaker:
        return None, None  # another instance shared a more recent change: keep it
    fields = {
        "breaker_state": breaker.state.value,
        "breaker_failures": breaker.failures,
        "breaker_opened_at": breaker.opened_at,
        "breaker_changed_at": breaker.changed_at,
    }
    return fields, None


def _breaker_of(doc: Fields) -> Breaker | None:
    if doc.get("breaker_state") is None:
        return None
    return Breaker(
        state=BreakerState(doc["breaker_state"]),
        failures=int(doc.get("breaker_failures") or 0),
        opened_at=_plain(doc.get("breaker_opened_at")),
        changed_at=_plain(doc.get("breaker_changed_at")),
    )


def _document_id(text: str) -> str:
    """A valid, injective Firestore document id: no '/', never '.', '..' or '__…__' (percent-escaped)."""
    escaped = quote(text, safe="")
    reserved = escaped in {".", ".."} or (escaped.startswith("__") and escaped.endswith("__"))
    return f"%{escaped}" if reserved else escaped


def _as_given(document: Fields) -> Fields:
    """A completion as recorded: without the store's `expire_at`, datetimes as plain aware datetimes."""
    return {name: _plain(value) for name, value in document.items() if name != EXPIRE_AT}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return datetime.combine(value.date(), value.timetz())  # not DatetimeWithNanoseconds; UTC
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _translated(exc: Exception, operation: str, timed_out: bool) -> BaseException:
    """What to raise instead of `exc`: TransientError for an outage or timeout, `exc` itself for a bug."""
    if timed_out:
        return TransientError(f"Firestore did not complete {operation} in time")
    # The transaction helper wraps what went wrong in a ValueError: "failed to commit in N attempts" (from
    # Aborted), or its rollback of a transaction that never began (the outage or cancellation is __context__).
    chain = list(_chain(exc)) if isinstance(exc, ValueError) else [exc]
    if any(isinstance(cause, _TRANSIENT) for cause in chain):
        return TransientError(f"Firestore unavailable during {operation}: {exc}")
    # asyncio's, because the client runs on grpc.aio, which is asyncio only.
    cancelled = [cause for cause in chain if isinstance(cause, asyncio.CancelledError)]
    return cancelled[0] if cancelled else exc  # restore a cancellation the rollback error swallowed


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
