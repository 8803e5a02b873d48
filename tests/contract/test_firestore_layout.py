"""What only the Firestore store has: the document layout, `expire_at` on every document for the TTL policy,
and vendor errors translated at the edge (an outage is a `TransientError`, a bug is not)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from adapters.errors import PermanentInputError, TransientError
from adapters.firestore_store import FirestoreStateStore, _translated, firestore_client
from policies.model import Mode
from tests.contract.test_state_store import KEY, LEASE_S, NOW, TRIGGER, firestore_store
from tests.support.emulators import HOST, PROJECT, Emulator, free_port

TTL = timedelta(days=7)
STATE_ID = "phase2_to_phase3_2025-12-30"


@pytest.fixture
def store(firestore_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> FirestoreStateStore:
    return firestore_store(monkeypatch, firestore_server.host_port)


async def raw(store: FirestoreStateStore, *path: str) -> dict[str, Any]:
    """A document read past the store, by the path the layout promises (a fresh client, same emulator)."""
    snapshot = await firestore_client(PROJECT).document(store.collection, *path).get()
    assert snapshot.exists, f"no document at {store.collection}/{'/'.join(path)}"
    return snapshot.to_dict() or {}


@pytest.mark.emulator
async def test_state_document_is_one_per_key_and_every_write_sets_expire_at(
    store: FirestoreStateStore,
) -> None:
    await store.pin_mode(KEY, Mode.OVERNIGHT, False, NOW)
    assert (await raw(store, STATE_ID))["expire_at"] == NOW + TTL
    claimed_at = NOW + timedelta(hours=1)
    await store.claim_trigger(KEY, TRIGGER, "a", claimed_at, LEASE_S)
    assert (await raw(store, STATE_ID))["expire_at"] == claimed_at + TTL
    await store.release_claim(KEY, TRIGGER, "a")  # has no `now`: keeps the claim's expire_at
    assert (await raw(store, STATE_ID))["expire_at"] == claimed_at + TTL
    published_at = NOW + timedelta(hours=2)
    await store.mark_published(KEY, TRIGGER, "b", published_at)
    state = await raw(store, STATE_ID)
    assert state == {
        "transition": "phase2_to_phase3",
        "game_date": "2025-12-30",
        "mode": "overnight",
        "mode_explicit": False,
        "claim_state": "published",
        "holder": "b",
        "trigger_id": TRIGGER,
        "lease_until": None,
        "published_at": published_at,
        "breaker_state": None,
        "breaker_failures": 0,
        "breaker_opened_at": None,
        "breaker_changed_at": None,
        "inputs": {},
        "expire_at": published_at + TTL,
    }


@pytest.mark.emulator
async def test_each_completion_is_its_own_document_under_the_key_with_expire_at(
    store: FirestoreStateStore,
) -> None:
    await store.record_completion(KEY, "nbac_gamebook__m-1", {"message_id": "m-1"}, NOW)
    stored = await raw(store, STATE_ID, "completions", "nbac_gamebook__m-1")
    assert stored == {"message_id": "m-1", "expire_at": NOW + TTL}
    assert await store.completions(KEY) == [{"message_id": "m-1"}]


@pytest.mark.emulator
@pytest.mark.parametrize("completion_id", ["odd/id__m-1", "..", "__m-2__", "name with spaces %2F"])
async def test_completion_ids_that_are_not_valid_document_ids_are_escaped_not_rejected(
    store: FirestoreStateStore, completion_id: str
) -> None:
    assert await store.record_completion(KEY, completion_id, {"id": completion_id}, NOW) is True
    assert await store.record_completion(KEY, completion_id, {"id": "again"}, NOW) is False
    assert await store.completions(KEY) == [{"id": completion_id}]


@pytest.mark.emulator
async def test_ttl_days_sets_the_expiry(firestore_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    store = firestore_store(monkeypatch, firestore_server.host_port, ttl_days=2)
    await store.record_completion(KEY, "c1", {}, NOW)
    assert (await raw(store, STATE_ID, "completions", "c1"))["expire_at"] == NOW + timedelta(days=2)


@pytest.mark.emulator
async def test_a_python_type_firestore_cannot_store_is_a_bug_not_an_outage(
    store: FirestoreStateStore,
) -> None:
    with pytest.raises(TypeError):
        await store.record_completion(KEY, "c1", {"bad": object()}, NOW)


@pytest.mark.emulator
@pytest.mark.parametrize(
    "message",
    [{"matrix": [[1, 2], [3, 4]]}, {"": "empty field name"}, {"n": 2**70}, {"__name__": "reserved"}],
    ids=["array-in-array", "empty-name", "int-over-64-bits", "reserved-name"],
)
async def test_a_completion_firestore_cannot_hold_is_a_permanent_input_error(
    store: FirestoreStateStore, message: dict[str, Any]
) -> None:
    # Valid JSON a processor may send; MemoryStateStore records it, Firestore cannot (see the report).
    with pytest.raises(PermanentInputError):
        await store.record_completion(KEY, "c1", {"message_id": "m-1", "message": message}, NOW)
    assert await store.completions(KEY) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.record_completion(KEY, "c1", {}, NOW),
        lambda s: s.completions(KEY),
        lambda s: s.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S),
        lambda s: s.pin_mode(KEY, Mode.OVERNIGHT, False, NOW),
    ],
    ids=["create", "list", "claim-transaction", "pin-transaction"],
)
async def test_a_store_that_does_not_answer_is_a_transient_error_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch, call: Any
) -> None:
    # Nothing listens on a port just freed: every RPC is refused and the client keeps retrying until the
    # store's own deadline. Needs no emulator.
    store = firestore_store(monkeypatch, f"{HOST}:{free_port()}", timeout_s=0.3)
    began = time.monotonic()
    with pytest.raises(TransientError):
        await call(store)
    assert time.monotonic() - began < 5  # not the library's 60-300 s of retries
    await asyncio.sleep(0)  # the deadline's cancellation did not leak into the caller


def _with(
    exc: BaseException, *, cause: BaseException | None = None, context: BaseException | None = None
) -> Any:
    exc.__cause__, exc.__context__ = cause, context
    return exc


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (gexc.ServiceUnavailable("down"), TransientError),
        (gexc.DeadlineExceeded("slow"), TransientError),
        (gexc.Aborted("lock timeout"), TransientError),
        (gexc.RetryError("gave up", cause=None), TransientError),
        # The transaction helper's wrappers: attempts exhausted, and a rollback of a transaction never begun.
        (_with(ValueError("failed in 5 attempts"), cause=gexc.Aborted("contention")), TransientError),
        (_with(ValueError("cannot roll back"), context=gexc.ServiceUnavailable("down")), TransientError),
        (_with(ValueError("cannot roll back"), context=asyncio.CancelledError()), asyncio.CancelledError),
        (ValueError("a bug"), ValueError),
        (TypeError("a bug"), TypeError),
        (gexc.PermissionDenied("misconfigured"), gexc.PermissionDenied),
    ],
    ids=[
        "unavailable",
        "deadline",
        "aborted",
        "retries-exhausted",
        "transaction-attempts-exhausted",
        "rollback-after-outage",
        "rollback-after-cancel",
        "value-error",
        "type-error",
        "permission-denied",
    ],
)
def test_vendor_outages_become_transient_errors_and_bugs_propagate(
    raised: Exception, expected: type[BaseException]
) -> None:
    assert type(_translated(raised, "claim_trigger", timed_out=False)) is expected
