"""The measurement on one running stack: watcher, warm-up, the measured window, and its numbers.

The window opens just before the first measured publish and closes when every expected output has reached
the watcher (cascade: a trigger for every key the plan says triggers; relay: the copy of every completing
input) and the processes have acked every message published so far. Counters and CPU are read from the
probed processes at both ends (`bench.cost_probe` snapshots); everything is divided by the measured events.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio

from adapters.pubsub_admin import PubSubAdmin
from bench import proc_cpu
from bench.cost_load import Key, Load, Phase, Sent, Watcher, publish_at_rate
from bench.cost_stack import PROJECT, Probed, Stack

WATCH_PREFIX = "bench-watch-"
READY_TIMEOUT_S = 90.0
SNAPSHOT_TIMEOUT_S = 10.0
POLL_S = 0.25

Snapshot = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pace:
    rate: float  # events per second
    drain_timeout_s: float  # how long after the last publish the window may stay open


class Window:
    def __init__(self, stack: Stack, load: Load, pace: Pace) -> None:
        self.stack, self.load, self.pace = stack, load, pace
        self.system = stack.system

    async def measure(self) -> dict[str, Any]:
        """Watch the outputs, wait for the processes, warm up, then the measured window."""
        root = self.stack.pubsub_root
        async with aiohttp.ClientSession() as session:
            admin = PubSubAdmin(PROJECT, session, root)
            watched = []
            for topic in self.stack.outputs:
                await admin.ensure_subscription(WATCH_PREFIX + topic, topic)
                watched.append(WATCH_PREFIX + topic)
            watcher = Watcher(session, root, PROJECT)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watcher.run, watched)
                await self._wait_ready()
                warmup = self.load.warmup
                warmed = True
                if warmup.messages:
                    await publish_at_rate(session, root, PROJECT, warmup.messages, self.pace.rate)
                    warmed = await self._wait_done(watcher, warmup, warmup.events)
                result = {"warmup_complete": warmed, **await self._window(session, watcher)}
                tasks.cancel_scope.cancel()
        return result

    async def _window(self, session: aiohttp.ClientSession, watcher: Watcher) -> dict[str, Any]:
        measured = self.load.measured
        before = await self._snapshot_all()
        machine_before, own_before, began = proc_cpu.processes(), _own_cpu_s(), time.monotonic()
        sent = await publish_at_rate(
            session, self.stack.pubsub_root, PROJECT, measured.messages, self.pace.rate
        )
        publish_s = time.monotonic() - began
        complete = await self._wait_done(watcher, measured, self.load.warmup.events + measured.events)
        after = await self._snapshot_all()
        window_s = time.monotonic() - began
        machine_after, own_s = proc_cpu.processes(), _own_cpu_s() - own_before
        return {
            "complete": complete,
            "window_s": window_s,
            "publish_s": publish_s,
            "events_per_s": measured.events / window_s,
            "publish_max_late_s": sent.max_late_s,
            "publish_failed": sent.failed,
            **_counts(before, after, measured.events),
            **self._outputs(measured, sent, watcher),
            "harness_cpu_ms_per_event": 1000 * own_s / measured.events,
            "emulator_cpu_ms_per_event": self._emulator_cpu(machine_before, machine_after, measured.events),
            "others": self._others(machine_before, machine_after, window_s),
        }

    # --- readiness and completion -------------------------------------------------------------------

    async def _wait_ready(self) -> None:
        """Until every process has a pull open on every subscription it consumes."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            for process in self.stack.processes:
                if process.popen.poll() is not None:
                    code = process.popen.returncode
                    raise RuntimeError(f"{self.system} exited with {code} before it was ready")
            snapshots = await self._snapshot_all()
            if all(s["http"].get("pubsub.pull", 0) >= len(self.stack.consumed) for s in snapshots):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.system} did not start pulling within {READY_TIMEOUT_S:.0f} s")
            await anyio.sleep(POLL_S)

    async def _wait_done(self, watcher: Watcher, phase: Phase, acked_total: int) -> bool:
        """Until every expected output arrived and every message was acked; False at the deadline."""
        deadline = time.monotonic() + self.pace.drain_timeout_s
        while True:
            if not self._missing(watcher, phase):
                snapshots = await self._snapshot_all()
                if sum(s["acked_messages"] for s in snapshots) >= acked_total:
                    return True
            if time.monotonic() > deadline:
                return False
            await anyio.sleep(POLL_S)

    def _missing(self, watcher: Watcher, phase: Phase) -> set[Key]:
        """The expected keys without an output yet (relay: without the copy of their completing input)."""
        if self.system == "relay":
            arrived = watcher.first_by_seq()
            return {key for key, seq in phase.completing.items() if seq not in arrived}
        return phase.expected - watcher.first_by_key().keys()

    def _outputs(self, phase: Phase, sent: Sent, watcher: Watcher) -> dict[str, Any]:
        """Publish of each key's completing input → its trigger (relay: its copy) at the watcher."""
        if self.system == "relay":
            by_seq = watcher.first_by_seq()
            arrivals = {key: by_seq.get(seq) for key, seq in phase.completing.items()}
            unexpected = 0
        else:
            by_key = watcher.first_by_key()
            arrivals = {key: by_key.get(key) for key in phase.completing}
            unexpected = len(by_key.keys() - phase.expected - self.load.warmup.expected)
        by_key = {
            "/".join(key): 1000 * (at - sent.at[phase.completing[key]])
            for key, at in arrivals.items()
            if at is not None and phase.completing[key] in sent.at
        }
        samples = list(by_key.values())
        missing = sorted("/".join(key) for key in self._missing(watcher, phase))
        result: dict[str, Any] = {
            "keys_expected": len(phase.expected),
            "keys_missing": len(missing),
            "missing": missing[:10],
            "keys_unexpected": unexpected,
        }
        if len(samples) >= 2:
            cuts = statistics.quantiles(samples, n=100, method="inclusive")
            result["latency_ms"] = {
                "p50": cuts[49],
                "p99": cuts[98],
                "max": max(samples),
                "samples": len(samples),
                # The slowest keys by name, to look them up in the routers' logs (--keep-logs).
                "slowest": sorted(by_key.items(), key=lambda item: -item[1])[:5],
            }
        return result

    # --- snapshots and the machine ------------------------------------------------------------------

    async def _snapshot_all(self) -> list[Snapshot]:
        return [await _snapshot(self.system, process) for process in self.stack.processes]

    def _emulator_cpu(
        self, before: dict[int, proc_cpu.ProcCpu], after: dict[int, proc_cpu.ProcCpu], events: int
    ) -> dict[str, float]:
        used = {}
        for emulator in self.stack.emulators:
            assert emulator.process is not None
            group = emulator.process.pid  # started in its own session: its Java children share the group
            used[emulator.name] = (
                1000 * (proc_cpu.group_cpu_s(after, group) - proc_cpu.group_cpu_s(before, group)) / events
            )
        return used

    def _others(
        self, before: dict[int, proc_cpu.ProcCpu], after: dict[int, proc_cpu.ProcCpu], window_s: float
    ) -> dict[str, Any]:
        groups = {p.pid for p in self.stack.processes} | {
            e.process.pid for e in self.stack.emulators if e.process
        }
        others = proc_cpu.others_between(before, after, {os.getpid()}, groups)
        return {
            "cpu_s": others.cpu_s,
            "cores_busy": others.cpu_s / window_s,
            "top": [[command, round(cpu, 2)] for command, cpu in others.top],
            "loadavg_1m_end": os.getloadavg()[0],
        }


async def _snapshot(system: str, process: Probed) -> Snapshot:
    assert process.popen.stdin is not None
    process.popen.stdin.write("snapshot\n")
    process.popen.stdin.flush()
    with anyio.fail_after(SNAPSHOT_TIMEOUT_S):
        line = await anyio.to_thread.run_sync(process.answers.readline, abandon_on_cancel=True)
    if not line:
        raise RuntimeError(f"{system} (pid {process.pid}) closed its snapshot channel")
    snapshot: Snapshot = json.loads(line)
    return snapshot


def _counts(before: list[Snapshot], after: list[Snapshot], events: int) -> dict[str, Any]:
    """What the processes did between the two snapshots, summed over the instances."""
    firestore: Counter[str] = Counter()
    http: Counter[str] = Counter()
    rounds: list[int] = []
    totals: Counter[str] = Counter()
    for start, end in zip(before, after, strict=True):
        firestore.update(_delta(start["firestore"], end["firestore"]))
        http.update(_delta(start["http"], end["http"]))
        rounds += [r for _, _, r in end["critical_path"][len(start["critical_path"]) :]]
        for name in ("cpu_user_s", "cpu_sys_s", "untraced_triggers", "nacked_messages"):
            totals[name] += end[name] - start[name]
    cpu_s = totals["cpu_user_s"] + totals["cpu_sys_s"]
    pubsub = {k.removeprefix("pubsub."): v for k, v in http.items() if k.startswith("pubsub.")}
    return {
        "events": events,
        "cpu_s": cpu_s,
        "cpu_ms_per_event": 1000 * cpu_s / events,
        "firestore_rpcs": dict(sorted(firestore.items())),
        "firestore_per_event": sum(firestore.values()) / events,
        "pubsub_requests": dict(sorted(pubsub.items())),
        "pubsub_per_event": sum(pubsub.values()) / events,
        "other_requests": {k: v for k, v in sorted(http.items()) if not k.startswith("pubsub.")},
        "round_trips": _distribution(rounds),
        "untraced_triggers": totals["untraced_triggers"],
        "nacked": totals["nacked_messages"],
        "max_rss_mib": max(e["max_rss_kib"] for e in after) / 1024,
    }


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _delta(start: dict[str, int], end: dict[str, int]) -> dict[str, int]:
    return {k: v - start.get(k, 0) for k, v in end.items() if v - start.get(k, 0)}


def _distribution(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "median": statistics.median(values),
        "mean": statistics.fmean(values),
        "max": max(values),
        "histogram": {str(k): v for k, v in sorted(Counter(values).items())},
    }
