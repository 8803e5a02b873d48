"""Invariants under arbitrary duplicate and reordered input: never two triggers for one date and transition."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.clock import VirtualClock
from adapters.memory import MemoryAuditSink, MemoryPublisher, MemoryStateStore
from ops.engine import Engine, EngineConfig
from policies.model import Policy, Status
from router import events as ev
from router.effects import PublishTrigger
from router.machine import step
from router.state import DateState
from tests.support.builders import arrived, default_policy, key, message, utc

POLICY = default_policy()
PHASE2 = key("phase2_to_phase3", "2025-12-30")
NIGHT = utc("2025-12-31T06:00")
PROCESSORS = ["odds_game_lines", "nbac_gamebook", "nbac_boxscores", "bigdataball_pbp", "odds_player_props"]

# One delivery: which processor, whether it failed, and how many seconds after NIGHT it was reported.
report_st = st.tuples(st.sampled_from(PROCESSORS), st.booleans(), st.integers(min_value=0, max_value=3600))


@settings(max_examples=300, deadline=None)
@given(
    reports=st.lists(report_st, max_size=25),
    order=st.randoms(use_true_random=False),
    duplicates=st.lists(st.integers(min_value=0, max_value=40), max_size=10),
    ticks=st.lists(st.integers(min_value=0, max_value=30 * 3600), max_size=10),
)
def test_pure_machine_publishes_at_most_once_per_key(reports, order, duplicates, ticks) -> None:  # type: ignore[no-untyped-def]
    events: list[ev.Event] = [
        arrived(name, NIGHT + timedelta(seconds=offset), status=Status.FAILED if failed else Status.SUCCESS)
        for name, failed, offset in reports
    ]
    # Every processor eventually succeeds (late), so a trigger is always possible in the end.
    finale = NIGHT + timedelta(hours=2)
    events += [arrived(name, finale) for name in PROCESSORS]
    events += [events[i % len(events)] for i in duplicates]  # redeliveries: same message ids
    events += [ev.Tick() for _ in ticks]
    order.shuffle(events)
    publishes, state = _drive(events, POLICY)
    # Every processor's newest report is a success, so the key triggers — exactly once, with its own id.
    assert [p.trigger_id for p in publishes] == [PHASE2.trigger_id]
    assert state is not None and state.phase.is_triggered


def _drive(events: list[ev.Event], policy: Policy) -> tuple[list[PublishTrigger], DateState | None]:
    state: DateState | None = None
    now = NIGHT
    publishes: list[PublishTrigger] = []
    for event in events:
        if isinstance(event, ev.CompletionArrived):
            now = max(now, event.report.timestamp)
        else:
            now += timedelta(minutes=7)
        result = step(state, PHASE2, event, now, policy)
        state = result.state
        for effect in result.effects:
            if isinstance(effect, PublishTrigger):
                publishes.append(effect)
                # The shell confirms every publish in this property (failures are covered below).
                confirm = step(state, PHASE2, ev.PublishSucceeded(effect.trigger_id, now), now, policy)
                state = confirm.state
    return publishes, state


DATES = ["2025-12-28", "2025-12-29", "2025-12-30"]
delivery_st = st.tuples(st.sampled_from(DATES), st.sampled_from(PROCESSORS), st.integers(0, 3000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    deliveries=st.lists(delivery_st, min_size=1, max_size=30),
    instance_of=st.lists(st.booleans(), min_size=80, max_size=80),
    redeliver=st.lists(st.integers(0, 60), max_size=8),
    failures=st.lists(st.integers(0, 3), max_size=6),
)
def test_two_instances_sharing_a_store_publish_one_trigger_id_per_key(  # type: ignore[no-untyped-def]
    deliveries, instance_of, redeliver, failures
) -> None:
    published = anyio.run(_race, deliveries, instance_of, redeliver, failures)
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for sent in published.messages:
        if sent.topic == "nba-phase3-trigger":
            attributes = sent.attributes
            by_key[(attributes["game_date"], attributes["transition"])].add(attributes["trigger_id"])
    assert all(len(ids) == 1 for ids in by_key.values())
    # Both instances see every date complete (all five processors at the end), so every date triggered.
    assert {game_date for game_date, _ in by_key} == set(DATES)


async def _race(deliveries, instance_of, redeliver, failures) -> MemoryPublisher:  # type: ignore[no-untyped-def]
    clock = VirtualClock(NIGHT)
    store, publisher = MemoryStateStore(), MemoryPublisher()
    engines = [
        Engine(lambda: POLICY, store, publisher, MemoryAuditSink(), clock, EngineConfig(instance_id=f"i{n}"))
        for n in range(2)
    ]
    stream = [(d, p, s) for d, p, s in deliveries] + [(d, p, 4000) for d in DATES for p in PROCESSORS]
    stream += [stream[i % len(stream)] for i in redeliver]
    for index, (game_date, processor, offset) in enumerate(stream):
        at = NIGHT + timedelta(seconds=offset)
        clock.set(at)
        if index < len(failures):
            publisher.fail_next(failures[index])
        # Explicit mode: three dates cannot all be "yesterday" at once, and older ones would be backfill.
        body = message(processor, "phase_2_raw", game_date, _z(at), processing_mode="overnight")
        message_id = f"{game_date}-{processor}-{offset}"
        target = engines[instance_of[index % len(instance_of)]]
        await target.deliver("nba-phase2-raw-complete", message_id, json.dumps(body).encode(), {})
        # Pub/Sub may also hand the same message to the other instance (ack deadline ran out).
        await engines[1 - instance_of[index % len(instance_of)]].deliver(
            "nba-phase2-raw-complete", message_id, json.dumps(body).encode(), {}
        )
    await _drain(engines, clock)
    return publisher


async def _drain(engines: list[Engine], clock: VirtualClock) -> None:
    """Run both instances' timers (retries, lease expiry) until neither has anything left for phase 2."""
    for _ in range(200):
        pending = [
            e.next_due()
            for e in engines
            if any(
                k.transition == "phase2_to_phase3" and not s.phase.is_triggered for k, s in e.states.items()
            )
        ]
        due = min((at for at in pending if at is not None), default=None)
        if due is None:
            return
        clock.set(due)
        for engine in engines:
            await engine.fire_due()


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_two_instances_without_failures_publish_each_trigger_exactly_once() -> None:
    deliveries = [(d, p, 10) for d in DATES for p in PROCESSORS]
    publisher = anyio.run(_race, deliveries, [False, True] * 40, [], [])
    triggers = publisher.on("nba-phase3-trigger")
    assert sorted(m.attributes["game_date"] for m in triggers) == sorted(DATES)
