"""One chaos trial: K daemons on a fresh project, D recorded days published with duplicates in a shuffled
order while the seed's faults hit, then the checks of `bench.chaos_checks`.

Everything random comes from `random.Random(seed)`: which dates, which duplicates, the order, the gaps
between publishes, the victim and the moments and lengths of the faults. The wall clock still decides how
those moments fall against the daemons' work, so a re-run with the same seed replays the same plan, not
necessarily the same interleaving.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio

from adapters.pubsub import PubSubPublisher, PubSubSource
from adapters.source import Received
from bench.chaos_checks import (
    Counts,
    Published,
    TriggerIdentity,
    audit_rows,
    check_audit,
    check_completions,
    check_triggers,
    key_records,
    trigger_identity,
    unrecorded,
)
from bench.chaos_day import Completion, Day, game_dates, recorded_day, with_duplicates_shuffled
from bench.chaos_faults import FaultPlan, kill_and_restart, pause_emulator, plan_faults
from bench.chaos_stack import DATASET, Backends, TrialStack, open_trial, trigger_topics, watch_subscription
from policies.model import Policy

DUPLICATES = (2, 8)  # repeated bodies per trial
# Between two publishes: 3 dates (~52 messages) go out over ~10 s, the window the faults fall in.
GAP_S = (0.0, 0.4)
READY_TIMEOUT_S = 60.0
# After the last fault: a killed instance's messages come back after their lease (30 s), a Firestore
# stall's nacked ones at once; a healthy trial settles well within this.
SETTLE_TIMEOUT_S = 120.0
HOST_VARIABLE = "FIRESTORE_EMULATOR_HOST"
WATCH_WINDOW_S = 3.0  # after every expected trigger arrived: a second trigger id would arrive right behind


@dataclass(frozen=True, slots=True)
class TrialPlan:
    seed: int
    days: list[Day]
    messages: list[Completion]
    gaps_s: list[float]
    faults: FaultPlan


@dataclass
class TrialResult:
    plan: TrialPlan
    counts: Counts
    seconds: float
    workdir: Path
    # From the first publish until every expected trigger message had arrived (None: some never did).
    triggers_in_s: float | None = None
    published: list[Published] = field(default_factory=list)
    seen: list[Received] = field(default_factory=list)  # the trigger messages, each delivery
    keys: list[dict[str, Any]] = field(default_factory=list)  # the shared records in Firestore, at the end


def plan_trial(
    seed: int, policy: Policy, instances: int, dates: int, today_utc: date, kill: bool = True
) -> TrialPlan:
    rng = random.Random(seed)
    days = [recorded_day(d, policy) for d in game_dates(dates, rng, today_utc)]
    messages = with_duplicates_shuffled(days, rng, rng.randint(*DUPLICATES))
    gaps_s = [rng.uniform(*GAP_S) for _ in messages]
    return TrialPlan(seed, days, messages, gaps_s, plan_faults(rng, instances, kill))


async def run_trial(
    backends: Backends, policy_path: Path, workdir: Path, plan: TrialPlan, instances: int
) -> TrialResult:
    began = time.monotonic()
    stack = await open_trial(backends, policy_path, workdir, instances)
    counts = Counts(trials=1, dates=len(plan.days), messages=len(plan.messages))
    seen: list[Received] = []
    arrivals: dict[TriggerIdentity, float] = {}  # the first arrival of each trigger message (monotonic)
    settled = False
    published: list[Published] = []
    try:
        for daemon in stack.daemons:
            daemon.start()
        if not await _until(lambda: all(d.ready() for d in stack.daemons), READY_TIMEOUT_S):
            raise RuntimeError(f"the daemons did not become ready; logs in {workdir}")
        async with anyio.create_task_group() as watching:
            watching.start_soon(_watch, stack, seen, arrivals)
            chaos_began = time.monotonic()
            async with anyio.create_task_group() as chaos:
                chaos.start_soon(_publish, stack, plan, published)
                if plan.faults.victim is not None:
                    chaos.start_soon(kill_and_restart, stack.daemons[plan.faults.victim], plan.faults)
                if plan.faults.firestore_stall:
                    chaos.start_soon(pause_emulator, backends.firestore, plan.faults.firestore_stall)
                if plan.faults.bigquery_outage:
                    chaos.start_soon(pause_emulator, backends.bigquery, plan.faults.bigquery_outage)
            settled = await _until(lambda: _settled(plan.days, seen, stack.policy), SETTLE_TIMEOUT_S)
            if settled:
                # A message in a killed instance's last pull comes back only after its ack deadline, maybe
                # after the last trigger (a duplicate is not needed for one): wait for it to be recorded
                # before stopping, so that "not recorded" means lost, not "not delivered yet".
                with firestore_at(backends.firestore.host_port):
                    await _until_recorded(stack, published, SETTLE_TIMEOUT_S)
                await anyio.sleep(WATCH_WINDOW_S)  # a watch window, not a wait for something
            watching.cancel_scope.cancel()
    finally:
        exits = stack.close()
    for daemon, code in zip(stack.daemons, exits, strict=True):
        if code != 0:
            counts.unexpected_exits += 1
            counts.details.append(
                f"{daemon.instance_id} exited with {code} after SIGTERM; log {daemon.logs[-1]}"
            )
    counts.store_outages = sum(_entered_outage(daemon.logs) for daemon in stack.daemons)
    keys = await _check(stack, backends, plan, seen, published, counts)
    triggers_in_s = max(arrivals.values()) - chaos_began if settled else None
    seconds = time.monotonic() - began
    return TrialResult(plan, counts, seconds, workdir, triggers_in_s, published, seen, keys)


async def _check(
    stack: TrialStack,
    backends: Backends,
    plan: TrialPlan,
    seen: list[Received],
    published: list[Published],
    counts: Counts,
) -> list[dict[str, Any]]:
    """The checks; returns the keys' shared records (for diagnosis)."""
    check_triggers(plan.days, stack.policy, seen, counts)
    with firestore_at(backends.firestore.host_port):
        await check_completions(stack.project, stack.collection, stack.policy, published, counts)
        keys = await key_records(stack.project, stack.collection)
    dates = sorted(date.fromisoformat(day.game_date) for day in plan.days)
    rows, rejected = await audit_rows(
        stack.project, DATASET, stack.endpoints.bigquery, stack.spools, dates[0], dates[-1]
    )
    if rejected:
        counts.details.append(f"{rejected} audit rows refused by BigQuery (see the spools' .rejected files)")
    check_audit(published, seen, rows, counts)
    return keys


async def _until_recorded(stack: TrialStack, published: list[Published], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while await unrecorded(stack.project, stack.collection, stack.policy, published):
        if time.monotonic() > deadline:
            return False
        await anyio.sleep(0.5)
    return True


async def _until(predicate: object, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Poll `predicate` (run in a thread: it may do blocking HTTP) until it holds or the deadline passes."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await anyio.to_thread.run_sync(predicate):
            return True
        await anyio.sleep(interval_s)
    return bool(await anyio.to_thread.run_sync(predicate))


def _settled(days: list[Day], seen: list[Received], policy: Policy) -> bool:
    """Every date has as many distinct trigger messages on each trigger topic as expected."""
    distinct: dict[tuple[str, str], set[tuple[str, str, str | None]]] = defaultdict(set)
    for message in list(seen):
        distinct[(message.attributes.get("game_date", ""), message.topic)].add(trigger_identity(message))
    return all(
        len(distinct[(day.game_date, topic)]) >= day.expected[topic]
        for day in days
        for topic in trigger_topics(policy)
    )


async def _publish(stack: TrialStack, plan: TrialPlan, published: list[Published]) -> None:
    async with aiohttp.ClientSession() as session:
        publisher = PubSubPublisher(stack.project, session=session, api_root=stack.endpoints.pubsub)
        for completion, gap_s in zip(plan.messages, plan.gaps_s, strict=True):
            await anyio.sleep(gap_s)  # the seed's pace, so that faults fall between messages
            message_id = await publisher.publish(completion.topic, completion.data, {})
            published.append(Published(completion, message_id, datetime.now(UTC).isoformat()))


async def _watch(stack: TrialStack, seen: list[Received], arrivals: dict[TriggerIdentity, float]) -> None:
    """Every message on the trigger topics, as a consumer downstream would see it (acked at once)."""

    async def record(received: Received) -> None:
        seen.append(received)
        arrivals.setdefault(trigger_identity(received), time.monotonic())

    topics = trigger_topics(stack.policy)
    async with aiohttp.ClientSession() as session:
        source = PubSubSource(
            stack.project,
            {watch_subscription(t): t for t in topics},
            session=session,
            api_root=stack.endpoints.pubsub,
        )
        await source.run(record)


@contextlib.contextmanager
def firestore_at(host_port: str) -> Iterator[None]:
    """FIRESTORE_EMULATOR_HOST (the only way to point the Firestore client at an emulator) for a while:
    restored after, since the test process shares its environment with other tests."""
    before = os.environ.get(HOST_VARIABLE)
    os.environ[HOST_VARIABLE] = host_port
    try:
        yield
    finally:
        if before is None:
            del os.environ[HOST_VARIABLE]
        else:
            os.environ[HOST_VARIABLE] = before


def today_utc() -> date:
    return datetime.now(UTC).date()


def _entered_outage(logs: list[Path]) -> bool:
    """Whether this instance (any of its starts) routed in the Firestore-outage mode."""
    return any(
        "alert state_store_unavailable" in log.read_text(errors="replace") for log in logs if log.exists()
    )
