"""The faults of a chaos trial: chosen from the trial's seed, injected while the day is being published.

- kill -9 of one instance at a random moment, restarted after a short pause under the same instance id
  (so it re-claims its own triggers at once instead of waiting out the claim lease) and the same spool;
- a Firestore stall: the emulator process SIGSTOPped for 2-30 s (connections accepted, nothing answered:
  every store call times out; past 15 s the instances route in the outage mode), then SIGCONT;
- a BigQuery outage: bqemulator SIGSTOPped the same way (the audit flusher backs off and spools).

A stopped emulator is always continued: `stopped()` continues it in `finally`, also when the trial is
cancelled (Ctrl-C), and `running_backends` continues every emulator again before stopping it.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import anyio

from bench.chaos_stack import Daemon
from tests.support.emulators import Emulator

# Fault windows in seconds; a trial publishes over about PUBLISH_WINDOW_S, and the faults fall inside it
# or just after it, while messages are still being routed.
KILL_AT_S = (0.0, 12.0)
RESTART_AFTER_S = (0.5, 4.0)
STALL_AT_S = (0.0, 10.0)
# The store's own timeout is 10 s and the chaos policy's `state_store.outage_after_s` 5 s: a short stall is
# absorbed by slow calls, a longer one by nacks and redelivery, the longest by the outage mode (journal).
FIRESTORE_STALL_S = (2.0, 30.0)
BIGQUERY_OUTAGE_S = (3.0, 15.0)
FIRESTORE_STALL_CHANCE = 0.5
BIGQUERY_OUTAGE_CHANCE = 0.5


@dataclass(frozen=True, slots=True)
class Pause:
    at_s: float  # after the trial's publishing began
    for_s: float


@dataclass(frozen=True, slots=True)
class FaultPlan:
    victim: int | None  # index of the instance killed; None: no kill (a control run, `--no-kill`)
    kill_at_s: float
    restart_after_s: float
    firestore_stall: Pause | None
    bigquery_outage: Pause | None

    def describe(self) -> str:
        parts = ["no kill"]
        if self.victim is not None:
            parts = [
                f"kill -9 #{self.victim} at {self.kill_at_s:.1f}s, back {self.restart_after_s:.1f}s later"
            ]
        if self.firestore_stall:
            parts.append(f"firestore stall {_pause(self.firestore_stall)}")
        if self.bigquery_outage:
            parts.append(f"bigquery outage {_pause(self.bigquery_outage)}")
        return "; ".join(parts)


def _pause(pause: Pause) -> str:
    return f"at {pause.at_s:.1f}s for {pause.for_s:.1f}s"


def plan_faults(rng: random.Random, instances: int, kill: bool = True) -> FaultPlan:
    victim = rng.randrange(instances)  # drawn also without a kill: the other faults stay the seed's
    return FaultPlan(
        victim=victim if kill else None,
        kill_at_s=rng.uniform(*KILL_AT_S),
        restart_after_s=rng.uniform(*RESTART_AFTER_S),
        firestore_stall=_maybe(rng, FIRESTORE_STALL_CHANCE, FIRESTORE_STALL_S),
        bigquery_outage=_maybe(rng, BIGQUERY_OUTAGE_CHANCE, BIGQUERY_OUTAGE_S),
    )


def _maybe(rng: random.Random, chance: float, duration_s: tuple[float, float]) -> Pause | None:
    # Both numbers drawn always, so one fault's presence never shifts the others' random draws.
    at_s, for_s, roll = rng.uniform(*STALL_AT_S), rng.uniform(*duration_s), rng.random()
    return Pause(at_s, for_s) if roll < chance else None


async def kill_and_restart(daemon: Daemon, plan: FaultPlan) -> None:
    await anyio.sleep(plan.kill_at_s)  # scheduling the fault at its random moment, not waiting for a state
    daemon.kill9()
    await anyio.sleep(plan.restart_after_s)
    daemon.start()


async def pause_emulator(emulator: Emulator, pause: Pause) -> None:
    await anyio.sleep(pause.at_s)
    with stopped(emulator):
        await anyio.sleep(pause.for_s)


@contextlib.contextmanager
def stopped(emulator: Emulator) -> Iterator[None]:
    emulator.freeze()
    try:
        yield
    finally:
        emulator.thaw()
