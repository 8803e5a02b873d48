"""The `StateStore` on Firestore: shared state, so several cascade instances never double-trigger or stall.

Layout:

    {collection}/{transition}_{game_date}                    the key's shared record (`router.shared`):
                                                             mode, mode_explicit, claim_state, holder,
                                                             trigger_id, lease_until, published_at, breaker_*,
                                                             inputs (completion id → recorded summary),
                                                             transition, game_date, expire_at
    {collection}/{transition}_{game_date}/completions/{id}   one recorded completion, with its message body

`update` is one conditional write: a batch commit of the record, plus a document for each completion the
change added (its summary and its message body). It is conditional on the record's `update_time` as this
instance last saw it (or on its absence); when another instance wrote in between, Firestore refuses the
write, and the change is decided again on a fresh read. No transaction: the emulator's transactions on one
contended document time out after 2 s each, while a refused conditional write costs one more read. The copy
this instance last wrote or read is kept (bounded, most recently used), so an uncontended update costs one
RPC (the commit); an unknown key is assumed absent and created; a change that writes nothing is checked
against a fresh read before it is believed. Callers that decide without writing pass `fresh=True`.

A completion lives in the record's `inputs` as a summary (so one read shows every instance's inputs) and in
its own document with the body as published. A record is bounded by Firestore's 1 MiB per document: at ~400
bytes per input that is ~2,500 recorded completions for one (game_date, transition).

Every write sets `expire_at = now + ttl_days` for a Firestore TTL policy on that field (so a completion's own
top-level `expire_at` field is overwritten); an update without `now` (a release) leaves it.

Calls for one key are serialised inside the process with a lock per key (so this process never races
itself); across processes the condition decides. Every call carries `timeout_s` as its gRPC deadline (a
cancel scope at 1.5x is the backstop). Outages and timeouts become `TransientError`; a completion Firestore
cannot hold becomes `PermanentInputError`; bugs propagate.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, cast
from urllib.parse import quote, unquote

import anyio
import grpc  # type: ignore[import-untyped]  # no stubs in the venv; only grpc.RpcError is used
from google.api_core import exceptions as gexc
from google.auth.exceptions import TransportError
from google.cloud.firestore import AsyncClient
from google.cloud.firestore_v1.async_batch import AsyncWriteBatch
from google.cloud.firestore_v1.async_document import AsyncDocumentReference
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from adapters.errors import PermanentInputError, TransientError
from adapters.ports import Change, KeyRecord, T
from adapters.record_ops import RecordOperations
from adapters.resource_names import DEFAULT_NAMES
from policies.breaker import Breaker, BreakerState
from policies.model import Mode
from router.keys import Key
from router.records import completion_document
from router.shared import EMPTY, ClaimState, SharedKey

Fields = dict[str, Any]

EXPIRE_AT = "expire_at"
COMPLETIONS = "completions"
PUBLISHED: Final = ClaimState.PUBLISHED.value

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


class FirestoreStateStore(RecordOperations):
    def __init__(
        self,
        client: AsyncClient,
        collection: str = DEFAULT_NAMES.firestore_collection,
        ttl_days: int = 7,
        timeout_s: float = 10.0,
        max_conflicts: int = 20,
        known_max: int = 4096,
        on_conflict: Callable[[], None] | None = None,
    ) -> None:
        self.collection = collection
        self._dates = client.collection(collection)
        self._client = client
        self._ttl = timedelta(days=ttl_days)
        self._timeout_s = timeout_s
        # Weak: a key's lock lives only while some call holds or waits for it, so the map never grows.
        self._locks: weakref.WeakValueDictionary[Key, anyio.Lock] = weakref.WeakValueDictionary()
        self._max_conflicts = max_conflicts
        # The record of each recently used key as this instance last wrote or read it.
        self._known: OrderedDict[Key, _Version] = OrderedDict()
        self._known_max = known_max
        self._on_conflict = on_conflict

    # --- layout -----------------------------------------------------------------------------------------

    def state_ref(self, key: Key) -> AsyncDocumentReference:
        name = _document_id(f"{key.transition}_{key.game_date.isoformat()}")
        return self._dates.document(name)

    def completion_ref(self, key: Key, completion_id: str) -> AsyncDocumentReference:
        completions = self.state_ref(key).collection(COMPLETIONS)  # typed Any by the library
        return cast(AsyncDocumentReference, completions.document(_document_id(completion_id)))

    # --- the port ---------------------------------------------------------------------------------------

    async def update(
        self,
        key: Key,
        change: Change[T],
        now: datetime | None,
        bodies: Mapping[str, str] | None = None,
        fresh: bool = False,
    ) -> T:
        async with self._guard("update", key):
            if fresh:
                self._remember(key, await self._read(key))
            for _ in range(self._max_conflicts):
                seen = self._known.get(key) or _Version(EMPTY, None, assumed=True)
                new, answer = change(seen.shared)
                if new == seen.shared and not seen.assumed:
                    return answer
                if new == seen.shared:
                    # Nothing to write, so no refused write would tell us the record was not as assumed.
                    self._remember(key, await self._read(key))
                    continue
                try:
                    self._remember(key, await self._write(key, seen, new, bodies or {}, now))
                    return answer
                except _CONFLICT:
                    # Another instance wrote since: decide again on what it wrote.
                    if self._on_conflict is not None:
                        self._on_conflict()
                    self._remember(key, await self._read(key))
        raise TransientError(f"{key}: {self._max_conflicts} conflicting writes in a row; try again")

    async def completions(self, key: Key) -> list[Mapping[str, Any]]:
        async with self._guard("completions"):
            stream = self.state_ref(key).collection(COMPLETIONS).stream(timeout=self._timeout_s)
            documents = [snapshot.to_dict() or {} async for snapshot in stream]
        return [_as_given(document) for document in documents]

    async def recent(self, since: date) -> list[KeyRecord]:
        async with self._guard("recent"):
            query = self._dates.where(filter=FieldFilter("game_date", ">=", since.isoformat()))
            documents = [snapshot.to_dict() or {} async for snapshot in query.stream(timeout=self._timeout_s)]
        return [_record(doc) for doc in documents if doc.get("transition") and doc.get("game_date")]

    # --- machinery --------------------------------------------------------------------------------------

    async def _read(self, key: Key) -> _Version:
        snapshot = await self.state_ref(key).get(timeout=self._timeout_s)
        if not snapshot.exists:
            return _Version(EMPTY, None)
        return _Version(shared_of(snapshot.to_dict() or {}), snapshot.update_time)

    async def _write(
        self,
        key: Key,
        seen: _Version,
        new: SharedKey,
        bodies: Mapping[str, str],
        now: datetime | None,
    ) -> _Version:
        """One batch: the record (created, or updated if unchanged since `seen`) and new completions."""
        expiry = self._expiry(now) if now is not None else {}
        try:
            batch = self._batch(key, seen, new, bodies, expiry)
            results = await batch.commit(timeout=self._timeout_s)
        except (gexc.InvalidArgument, ValueError) as exc:
            # Values Firestore cannot hold (an array in an array, an empty or reserved field name, an int
            # beyond 64 bits, a value over 1 MiB): this completion can never be recorded here.
            raise PermanentInputError(f"Firestore cannot store the update of {key}: {exc}") from exc
        return _Version(new, results[0].update_time)

    def _batch(
        self,
        key: Key,
        seen: _Version,
        new: SharedKey,
        bodies: Mapping[str, str],
        expiry: Fields,
    ) -> AsyncWriteBatch:
        batch = self._client.batch()
        ref = self.state_ref(key)
        if seen.update_time is None:
            identity = {"transition": key.transition, "game_date": key.game_date.isoformat()}
            batch.create(ref, {**identity, **fields_of(new), **expiry})
        else:
            condition = self._client.write_option(last_update_time=seen.update_time)
            batch.update(ref, {**changed_fields(seen.shared, new), **expiry}, option=condition)
        for completion_id in new.inputs.keys() - seen.shared.inputs.keys():
            document = completion_document(new.inputs[completion_id], bodies.get(completion_id))
            batch.set(self.completion_ref(key, completion_id), {**document, **expiry})
        return batch

    def _remember(self, key: Key, version: _Version) -> None:
        self._known[key] = version
        self._known.move_to_end(key)
        while len(self._known) > self._known_max:
            self._known.popitem(last=False)

    @asynccontextmanager
    async def _guard(self, operation: str, key: Key | None = None) -> AsyncIterator[None]:
        """Bound the call by `timeout_s`, serialise it per key, translate vendor errors."""
        # Each call carries its own gRPC deadline (`timeout_s`), which ends it as DeadlineExceeded. This scope
        # is only a backstop, later: cancelled from outside at the same instant, a hung gRPC call (a stopped
        # Firestore) let the CancelledError escape the scope instead of ending as a TransientError.
        scope = anyio.CancelScope(deadline=anyio.current_time() + self._timeout_s * BACKSTOP)
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


# --- the record as document fields, and back --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Version:
    """A record as this instance last saw it: `update_time` None means absent (as read, or as `assumed`)."""

    shared: SharedKey
    update_time: Any
    assumed: bool = False


BACKSTOP = 1.5  # a call is cancelled at this multiple of its own deadline (see `_guard`)
# Refused conditional writes: the record changed (or appeared) since it was read.
_CONFLICT = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound)
_INPUTS = "inputs"


def fields_of(shared: SharedKey) -> Fields:
    return {
        **_scalar_fields(shared),
        _INPUTS: {_map_key(cid): summary for cid, summary in shared.inputs.items()},
    }


def _scalar_fields(shared: SharedKey) -> Fields:
    breaker = shared.breaker
    return {
        "mode": shared.mode.value if shared.mode is not None else None,
        "mode_explicit": shared.mode_explicit,
        "claim_state": shared.claim_state.value if shared.claim_state is not None else None,
        "holder": shared.holder,
        "trigger_id": shared.trigger_id,
        "lease_until": shared.lease_until,
        "published_at": shared.published_at,
        "breaker_state": breaker.state.value if breaker is not None else None,
        "breaker_failures": breaker.failures if breaker is not None else 0,
        "breaker_opened_at": breaker.opened_at if breaker is not None else None,
        "breaker_changed_at": breaker.changed_at if breaker is not None else None,
    }


def shared_of(doc: Fields) -> SharedKey:
    claim_state = doc.get("claim_state")
    return SharedKey(
        mode=Mode(doc["mode"]) if doc.get("mode") else None,
        mode_explicit=bool(doc.get("mode_explicit")),
        claim_state=ClaimState(claim_state) if claim_state else None,
        holder=doc.get("holder"),
        trigger_id=doc.get("trigger_id"),
        lease_until=_plain(doc.get("lease_until")),
        published_at=_plain(doc.get("published_at")),
        breaker=_breaker_of(doc),
        inputs={_from_map_key(name): _plain(summary) for name, summary in (doc.get(_INPUTS) or {}).items()},
    )


def changed_fields(old: SharedKey, new: SharedKey) -> Fields:
    """The fields to update: changed top-level fields, and each new input on its own field path (so an
    update never rewrites the inputs it did not add)."""
    before, after = _scalar_fields(old), _scalar_fields(new)
    changes = {name: value for name, value in after.items() if before[name] != value}
    for completion_id in new.inputs.keys() - old.inputs.keys():
        changes[FieldPath(_INPUTS, _map_key(completion_id)).to_api_repr()] = new.inputs[completion_id]
    return changes


def _map_key(completion_id: str) -> str:
    """A completion id as a key of the `inputs` map: never empty, never reserved (`__…__`), reversible."""
    return "c" + quote(completion_id, safe="")


def _from_map_key(name: str) -> str:
    return unquote(name[1:])


def _record(doc: Fields) -> KeyRecord:
    key = Key(date.fromisoformat(doc["game_date"]), doc["transition"])
    published = _plain(doc.get("published_at")) if doc.get("claim_state") == PUBLISHED else None
    return KeyRecord(key, Mode(doc["mode"]) if doc.get("mode") else None, published)


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
    # The library's transaction helper wraps what went wrong in a ValueError ("failed to commit in N
    # attempts", or a rollback of a transaction never begun, with the outage or cancellation as
    # __context__). This store no longer runs transactions; the unwrapping stays for any call that does.
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
