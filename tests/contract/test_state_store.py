"""The `StateStore` contract: one suite, run against `MemoryStateStore` and the emulator-backed Firestore store.

What it protects: create-if-absent completions, the first pinned mode, and the trigger claim protocol
(claim with a lease → publish → mark published, or release) that keeps several instances from double-triggering.
Time is explicit (`now` is an argument); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from adapters.firestore_store import FirestoreStateStore, firestore_client
from adapters.memory import MemoryStateStore
from adapters.ports import Claim, StateStore
from policies.breaker import Breaker, BreakerState
from policies.model import Mode
from router import shared as records
from router.shared import SharedKey
from tests.support.builders import key, utc
from tests.support.emulators import PROJECT, Emulator

NOW = utc("2025-12-31T06:00")
LEASE_S = 60.0
KEY = key("phase2_to_phase3", "2025-12-30")
OTHER_KEY = key("phase3_to_phase4", "2025-12-30")
TRIGGER = KEY.trigger_id


def firestore_store(monkeypatch: pytest.MonkeyPatch, host_port: str, **options: Any) -> FirestoreStateStore:
    """A store on the emulator at `host_port`, in a collection of its own so tests never see each other."""
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", host_port)
    options.setdefault("collection", f"cascade-test-{uuid.uuid4().hex}")
    return FirestoreStateStore(firestore_client(PROJECT), **options)


@pytest.fixture(params=["memory", pytest.param("firestore", marks=pytest.mark.emulator)])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> StateStore:
    if request.param == "memory":
        return MemoryStateStore()
    # Requested lazily, so a run that deselects the emulator cases never starts the emulator.
    server: Emulator = request.getfixturevalue("firestore_server")
    return firestore_store(monkeypatch, server.host_port)


# --- pinned mode ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pins", "expected"),
    [
        ([(Mode.OVERNIGHT, False), (Mode.SAME_DAY, False)], [Mode.OVERNIGHT, Mode.OVERNIGHT]),
        ([(Mode.OVERNIGHT, False), (Mode.MANUAL, True)], [Mode.OVERNIGHT, Mode.MANUAL]),
        (
            [(Mode.OVERNIGHT, False), (Mode.MANUAL, True), (Mode.SAME_DAY, False)],
            [Mode.OVERNIGHT, Mode.MANUAL, Mode.MANUAL],
        ),
        ([(Mode.BACKFILL, True), (Mode.TOMORROW, True)], [Mode.BACKFILL, Mode.TOMORROW]),
        ([(Mode.SAME_DAY, False), (Mode.SAME_DAY, False), (Mode.SAME_DAY, True)], [Mode.SAME_DAY] * 3),
    ],
    ids=["first-pin-wins", "explicit-overrides", "explicit-stays-pinned", "explicit-twice", "same-mode"],
)
async def test_pin_mode_keeps_the_first_pin_unless_an_explicit_mode_overrides(
    store: StateStore, pins: list[tuple[Mode, bool]], expected: list[Mode]
) -> None:
    answers = [await store.pin_mode(KEY, mode, explicit, NOW) for mode, explicit in pins]
    assert answers == expected
    assert await store.pin_mode(OTHER_KEY, Mode.TOMORROW, False, NOW) is Mode.TOMORROW  # keys are independent


# --- completions ----------------------------------------------------------------------------------------


async def test_record_completion_creates_once_and_a_redelivery_changes_nothing(store: StateStore) -> None:
    first = {"message_id": "m-1", "status": "success"}
    assert await store.record_completion(KEY, "gamebook__m-1", first, NOW) is True
    redelivered = {"message_id": "m-1", "status": "failed"}
    assert await store.record_completion(KEY, "gamebook__m-1", redelivered, NOW) is False
    assert await store.completions(KEY) == [first]


async def test_completions_with_different_ids_are_all_kept_per_key(store: StateStore) -> None:
    assert await store.record_completion(KEY, "gamebook__m-1", {"message_id": "m-1"}, NOW)
    assert await store.record_completion(KEY, "gamebook__m-2", {"message_id": "m-2"}, NOW)
    assert await store.record_completion(OTHER_KEY, "gamebook__m-1", {"message_id": "m-1"}, NOW)
    recorded = await store.completions(KEY)
    assert sorted(document["message_id"] for document in recorded) == ["m-1", "m-2"]
    assert await store.completions(key("phase2_to_phase3", "2025-12-29")) == []


async def test_completions_return_the_documents_as_recorded_with_nested_values_and_datetimes(
    store: StateStore,
) -> None:
    document = {
        "message_id": "m-7",
        "processor": "nbac_gamebook",
        "status": "partial",
        "timestamp": utc("2025-12-31T06:12:09.123456"),
        "record_count": 241,
        "completion_pct": None,
        "quality": 0.75,
        "counts": {"rows": 241, "skipped": 0},
        "message": {
            "metadata": {
                "games_expected": 11,
                "files": ["a.json", "b.json"],
                "deep": {"ok": True, "expire_at": "kept"},
            }
        },
    }
    await store.record_completion(KEY, "nbac_gamebook__m-7", document, NOW)
    [stored] = await store.completions(KEY)
    assert stored == document
    assert type(stored["timestamp"]) is type(
        document["timestamp"]
    )  # a plain aware datetime, not a vendor type
    assert stored["timestamp"].utcoffset() == timedelta(0)


# --- the trigger claim ----------------------------------------------------------------------------------


async def test_a_live_claim_is_held_against_other_instances_with_its_lease(store: StateStore) -> None:
    lease_until = NOW + timedelta(seconds=LEASE_S)
    assert await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S) == Claim(
        "claimed", lease_until=lease_until, holder="a"
    )
    later = NOW + timedelta(seconds=59)
    assert await store.claim_trigger(KEY, TRIGGER, "b", later, LEASE_S) == Claim(
        "held", lease_until=lease_until, holder="a"
    )
    assert (
        await store.claim_trigger(OTHER_KEY, OTHER_KEY.trigger_id, "b", later, LEASE_S)
    ).outcome == "claimed"


async def test_the_holder_claiming_again_renews_its_own_lease(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    again = NOW + timedelta(seconds=30)
    assert await store.claim_trigger(KEY, TRIGGER, "a", again, LEASE_S) == Claim(
        "claimed", lease_until=again + timedelta(seconds=LEASE_S), holder="a"
    )


async def test_an_expired_lease_of_a_dead_instance_is_taken_over(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "dead", NOW, LEASE_S)
    expiry = NOW + timedelta(seconds=LEASE_S)  # the lease is live strictly before lease_until
    assert await store.claim_trigger(KEY, TRIGGER, "b", expiry, LEASE_S) == Claim(
        "claimed", lease_until=expiry + timedelta(seconds=LEASE_S), holder="b"
    )
    assert (await store.claim_trigger(KEY, TRIGGER, "dead", expiry, LEASE_S)).outcome == "held"


async def test_after_mark_published_every_claim_says_published_with_the_time(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    published_at = NOW + timedelta(seconds=2)
    await store.mark_published(KEY, TRIGGER, "a", published_at)
    expected = Claim("published", published_at=published_at, holder="a")
    for instance, at in [("a", NOW + timedelta(seconds=3)), ("b", NOW + timedelta(days=2))]:
        assert await store.claim_trigger(KEY, TRIGGER, instance, at, LEASE_S) == expected


async def test_mark_published_twice_keeps_the_first_publish(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    await store.mark_published(KEY, TRIGGER, "a", NOW + timedelta(seconds=1))
    await store.mark_published(KEY, TRIGGER, "b", NOW + timedelta(seconds=90))  # a late re-publisher
    claim = await store.claim_trigger(KEY, TRIGGER, "c", NOW + timedelta(seconds=100), LEASE_S)
    assert claim == Claim("published", published_at=NOW + timedelta(seconds=1), holder="a")


async def test_release_by_the_holder_makes_the_trigger_claimable_by_anyone(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    await store.release_claim(KEY, TRIGGER, "a")
    soon = NOW + timedelta(seconds=1)
    assert await store.claim_trigger(KEY, TRIGGER, "b", soon, LEASE_S) == Claim(
        "claimed", lease_until=soon + timedelta(seconds=LEASE_S), holder="b"
    )


async def test_release_by_a_non_holder_changes_nothing(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    await store.release_claim(KEY, TRIGGER, "b")
    await store.release_claim(OTHER_KEY, OTHER_KEY.trigger_id, "a")  # a key never claimed
    held = await store.claim_trigger(KEY, TRIGGER, "b", NOW + timedelta(seconds=1), LEASE_S)
    assert held == Claim("held", lease_until=NOW + timedelta(seconds=LEASE_S), holder="a")


async def test_release_after_publish_keeps_it_published(store: StateStore) -> None:
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    await store.mark_published(KEY, TRIGGER, "a", NOW)
    await store.release_claim(KEY, TRIGGER, "a")
    assert (await store.claim_trigger(KEY, TRIGGER, "b", NOW, LEASE_S)).outcome == "published"


async def test_concurrent_claims_by_several_instances_give_exactly_one_claimed(store: StateStore) -> None:
    instances = ["a", "b", "c", "d"]
    claims = await asyncio.gather(*(store.claim_trigger(KEY, TRIGGER, i, NOW, LEASE_S) for i in instances))
    [winner] = [claim for claim in claims if claim.outcome == "claimed"]
    assert winner.holder in instances
    assert all(
        claim == Claim("held", winner.lease_until, holder=winner.holder)
        for claim in claims
        if claim != winner
    )


async def test_a_shared_breaker_reads_back_and_an_older_change_never_overwrites_a_newer_one(
    store: StateStore,
) -> None:
    assert await store.shared_breaker(KEY) is None
    opened = Breaker(BreakerState.OPEN, 5, NOW, changed_at=NOW)
    await store.share_breaker(KEY, opened, NOW)
    assert await store.shared_breaker(KEY) == opened
    stale = Breaker(BreakerState.CLOSED, 2, None, changed_at=NOW - timedelta(minutes=1))
    await store.share_breaker(KEY, stale, NOW)
    assert await store.shared_breaker(KEY) == opened
    healed = Breaker(changed_at=NOW + timedelta(minutes=1))
    await store.share_breaker(KEY, healed, NOW + timedelta(minutes=1))
    assert await store.shared_breaker(KEY) == healed


async def test_recent_lists_the_keys_from_a_date_with_mode_and_publish_time(store: StateStore) -> None:
    older = key("phase2_to_phase3", "2025-12-28")
    await store.pin_mode(older, Mode.BACKFILL, False, NOW)
    await store.pin_mode(KEY, Mode.OVERNIGHT, False, NOW)
    await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    await store.mark_published(KEY, TRIGGER, "a", NOW)
    downstream = key("phase3_to_phase4", KEY.game_date.isoformat())
    await store.pin_mode(downstream, Mode.OVERNIGHT, False, NOW)
    records = {r.key: r for r in await store.recent(KEY.game_date)}
    assert set(records) == {KEY, downstream}
    assert records[KEY].mode is Mode.OVERNIGHT and records[KEY].published_at == NOW
    assert records[downstream].published_at is None


# --- an outage's journal written back (ops.store_outage) --------------------------------------------------


async def test_a_journaled_record_is_written_in_keeping_what_others_recorded_and_twice_changes_nothing(
    store: StateStore,
) -> None:
    await store.pin_mode(KEY, Mode.OVERNIGHT, False, NOW)  # another instance, before the outage
    await store.record_completion(KEY, "gamebook__m-1", {"message_id": "m-1"}, NOW)
    ours = SharedKey(mode=Mode.SAME_DAY)  # what this instance decided alone meanwhile
    for n in (2, 3):
        ours, _ = records.record(ours, f"boxscores__m-{n}", {"message_id": f"m-{n}"})
    ours = records.mark(ours, TRIGGER, "b", NOW + timedelta(minutes=5))
    bodies = {"boxscores__m-2": '{"n": 2}', "boxscores__m-3": '{"n": 3}'}

    def merge(shared: SharedKey) -> tuple[SharedKey, None]:
        return records.reconcile(shared, ours, "b"), None

    for _ in range(2):
        await store.update(KEY, merge, NOW, bodies)
    recorded = sorted(await store.completions(KEY), key=lambda d: d["message_id"])
    assert [d["message_id"] for d in recorded] == ["m-1", "m-2", "m-3"]
    assert [d.get("message_json") for d in recorded] == [None, '{"n": 2}', '{"n": 3}']
    assert await store.pin_mode(KEY, Mode.TOMORROW, False, NOW) is Mode.OVERNIGHT  # the first pin stays
    claim = await store.claim_trigger(KEY, TRIGGER, "a", NOW, LEASE_S)
    assert claim.outcome == "published" and claim.published_at == NOW + timedelta(minutes=5)
