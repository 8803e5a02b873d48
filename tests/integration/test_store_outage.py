"""`cascade run` on the emulators while Firestore is down (issue 9, section 3): stopped (SIGSTOP) for 60 s
mid-day, and killed outright. The day still cascades, and once Firestore answers its records are complete.

The policy here enters the outage mode after 5 s of failure (the NBA policy: 60 s) and probes every 2 s."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import pytest

from adapters.firestore_store import FirestoreStateStore, firestore_client
from router.keys import Key
from router.shared import ClaimState, SharedKey
from tests.integration.test_daemon import (
    EXPECTED,
    Stack,
    collect_triggers,
    make_stack,
    metric,
    overnight_messages,
    publish,
    start,
    stop,
)
from tests.support.emulators import Emulator, firestore_emulator, running, wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(240)]

FAST_OUTAGE = {"outage_after_s: 60": "outage_after_s: 5", "probe_every_s: 10": "probe_every_s: 2"}
PHASE2_MESSAGES = 5  # the recorded day's first five messages complete phase 2
# Triggers that need phase 3 or later: they can only come out while Firestore is down.
AFTER_PHASE3 = {**EXPECTED, "nba-phase3-trigger": 0}
TRANSITIONS = ("phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6")


@pytest.fixture
def own_firestore() -> Iterator[Emulator]:
    """A Firestore emulator this test may stop or kill (and start again on the same port)."""
    yield from running(firestore_emulator())


@pytest.fixture
def outage_stack(
    pubsub_server: Emulator, own_firestore: Emulator, bigquery_server: Emulator, tmp_path: Path
) -> Stack:
    return make_stack(pubsub_server, own_firestore, bigquery_server, tmp_path, FAST_OUTAGE)


def kill(emulator: Emulator) -> None:
    assert emulator.process is not None
    os.killpg(emulator.process.pid, signal.SIGKILL)
    emulator.process.wait(timeout=10)


def gauge(stack: Stack, name: str) -> float | None:
    """The gauge's value; None when /metrics did not answer within its 2 s or lacks the gauge. Never 0 for
    an unanswered read: `metric` says 0.0 for a missing line, and a wait for the gauge to drop to 0 then
    ended while the daemon was busy writing the journal back (seen once in a full run)."""
    status, text = stack.get("/metrics")
    if status != 200 or not any(line.startswith(f"{name} ") for line in text.splitlines()):
        return None
    return metric(text, name)


def the_day() -> list[Key]:
    game_date = date.fromisoformat(json.loads(overnight_messages()[0][1])["game_date"])
    return [Key(game_date, transition) for transition in TRANSITIONS]


async def records(stack: Stack, keys: list[Key]) -> dict[Key, tuple[SharedKey, list[Any]]]:
    os.environ["FIRESTORE_EMULATOR_HOST"] = stack.env["FIRESTORE_EMULATOR_HOST"]
    store = FirestoreStateStore(firestore_client(stack.project), stack.env["CASCADE_FIRESTORE_COLLECTION"])
    found = {}
    for key in keys:

        def read(shared: SharedKey) -> tuple[SharedKey, SharedKey]:
            return shared, shared

        found[key] = (await store.update(key, read, None, fresh=True), await store.completions(key))
    return found


def phase_2_triggered(stack: Stack) -> None:
    """The day begins while Firestore answers: phase 2 completes and its trigger comes out."""
    anyio.run(publish, stack, overnight_messages()[:PHASE2_MESSAGES])
    anyio.run(collect_triggers, stack, {"nba-phase3-trigger": 1})


def routed_the_rest_while_down(stack: Stack, daemon: subprocess.Popen[str]) -> dict[str, list[Any]]:
    """The rest of the day is published while Firestore does not answer: every later trigger comes out."""
    anyio.run(publish, stack, overnight_messages()[PHASE2_MESSAGES:])
    got = anyio.run(collect_triggers, stack, AFTER_PHASE3, 50)
    assert {t: len(m) for t, m in got.items() if t != "nba-phase3-trigger"} == {
        t: n for t, n in AFTER_PHASE3.items() if t != "nba-phase3-trigger"
    }
    for messages in got.values():
        assert len({m.attributes["trigger_id"] for m in messages}) <= 1
    assert gauge(stack, "cascade_state_store_unavailable") == 1
    assert json.loads(stack.get("/status")[1])["state_store"]["outage"] is True
    assert daemon.poll() is None
    return got


def assert_records_complete(stack: Stack, keys: list[Key]) -> None:
    """Every key published (marked, with its trigger id) and every completion it consumed recorded."""
    found = anyio.run(records, stack, keys)
    inputs = {"phase3_to_phase4": 5, "phase4_to_phase5": 5, "phase5_to_phase6": 1}
    for key in keys:
        record, documents = found[key]
        assert record.claim_state is ClaimState.PUBLISHED, key
        assert record.trigger_id == key.trigger_id
        if key.transition in inputs:
            assert len(record.inputs) == inputs[key.transition] == len(documents), key
            assert all(d.get("message_json") for d in documents)


def test_firestore_stopped_for_60_s_mid_day_the_day_cascades_and_its_records_are_complete(
    outage_stack: Stack, own_firestore: Emulator
) -> None:
    stack = outage_stack
    daemon = start(stack)
    try:
        phase_2_triggered(stack)
        own_firestore.freeze()
        stopped_at = time.monotonic()
        try:
            routed_the_rest_while_down(stack, daemon)
            time.sleep(max(0.0, stopped_at + 60 - time.monotonic()))  # the fault lasts 60 s
        finally:
            own_firestore.thaw()
        assert wait_until(lambda: gauge(stack, "cascade_state_store_unavailable") == 0, 60)
        assert gauge(stack, "cascade_store_journal_keys") == 0
        assert_records_complete(stack, the_day())
    finally:
        returncode, output = stop(daemon)
    assert returncode == 0, output[-3000:]
    assert "state_store_unavailable" in output and "state_store_recovered" in output


def test_firestore_killed_outright_the_day_cascades_and_a_new_one_gets_the_journal(
    outage_stack: Stack, own_firestore: Emulator
) -> None:
    stack = outage_stack
    daemon = start(stack)
    try:
        phase_2_triggered(stack)
        kill(own_firestore)
        routed_the_rest_while_down(stack, daemon)
        # A new one on the same port, empty: what the old one knew died with it. The fixture stops it.
        own_firestore.process = firestore_emulator(own_firestore.port).start().process
        assert wait_until(lambda: gauge(stack, "cascade_state_store_unavailable") == 0, 60)
        # What the instance decided alone is all there; the phase-2 key's record died with the old emulator.
        assert_records_complete(stack, the_day()[1:])
    finally:
        returncode, output = stop(daemon)
    assert returncode == 0, output[-3000:]
