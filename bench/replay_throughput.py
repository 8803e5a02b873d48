"""Replay throughput: how fast the real engine replays a long synthetic recording.

    python -m bench.replay_throughput [--dates 10000] [--seed 7] [--repeat 3] [--profile]

Generates the recording (`bench.synthetic`), parses its JSONL lines with `ops.replay.read_recording` (timed
on its own), then times `ops.replay.replay` end to end under `anyio.run`, `--repeat` times, and prints the
best and median wall time. The replay is the same code `cascade replay` runs: in-memory adapters, a virtual
clock, every re-check, fallback and self-heal timer fired in order. Writing the timeline (`--out`) is timed
once on its own, after the timed runs.

The guard at the end is a benchmark sanity check, not a test: a fast replay that routes wrongly is no result.
It checks every complete date produced exactly four trigger_ids, every broken date stopped at its broken
transition, and the duplicate and dead-letter counts match what the generator injected.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import anyio

from bench.synthetic import DEFAULT_SEED, DEFAULT_START, STAGES, SyntheticLog, generate_log, to_jsonl
from ops.engine import Delivery
from ops.policy_file import load_policy
from ops.replay import RecordedDelivery, ReplayResult, read_recording, replay, write_timeline
from policies.model import Policy
from router.keys import Key
from router.state import Phase

PROFILE_TOP = 25
_INSTALLED = re.compile(r".*/lib/python3\.\d+/(site-packages/)?")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    policy = load_policy(None)

    started = time.perf_counter()
    log = generate_log(args.dates, args.seed, args.start)
    lines = to_jsonl(log.records)
    generate_s = time.perf_counter() - started

    started = time.perf_counter()
    deliveries = read_recording(lines, "<synthetic>")
    parse_s = time.perf_counter() - started
    del lines
    rss_before_kib = _peak_rss_kib()

    if args.profile:
        result = _profiled(deliveries, policy)
        _print_counts(log, deliveries, result, generate_s, parse_s)
    else:
        result, runs = _timed(deliveries, policy, args.repeat)
        _print_counts(log, deliveries, result, generate_s, parse_s)
        _print_timings(len(deliveries), runs)
        _print_write_time(result)
    peak_mib, before_mib = _peak_rss_kib() / 1024, rss_before_kib / 1024
    print(f"peak RSS            {peak_mib:.0f} MiB (after generate+parse: {before_mib:.0f} MiB)")

    problems = guard(log, result)
    for problem in problems[:20]:
        print(f"  guard: {problem}")
    print(f"{'FAIL' if problems else 'PASS'}: {_verdict(log, problems)}")
    return 1 if problems else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay_throughput", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dates", type=int, default=10_000, help="consecutive game dates (default 10000)")
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})"
    )
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first game date")
    parser.add_argument("--repeat", type=int, default=3, help="timed replays; best and median are reported")
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"one replay under cProfile; print the top {PROFILE_TOP} entries",
    )
    return parser


# --- running --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float  # anyio.run(...) end to end: what `cascade replay` pays
    inside_s: float  # the `replay` coroutine alone; the rest is event-loop setup and teardown
    gc_s: float  # cyclic garbage collection during the run (all generations)


class _GcTimer:
    """Adds up the time spent in cyclic GC while installed (gc.callbacks: cheap, a few thousand calls)."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total_s += time.perf_counter() - self._started


def _run(deliveries: list[RecordedDelivery], policy: Policy) -> tuple[ReplayResult, Run]:
    inside: list[float] = []

    async def timed_replay() -> ReplayResult:
        started = time.perf_counter()
        result = await replay(deliveries, policy)
        inside.append(time.perf_counter() - started)
        return result

    gc_timer = _GcTimer()
    gc.callbacks.append(gc_timer)
    try:
        started = time.perf_counter()
        result = anyio.run(timed_replay, backend_options={"use_uvloop": True})
        wall_s = time.perf_counter() - started
    finally:
        gc.callbacks.remove(gc_timer)
    return result, Run(wall_s, inside[0], gc_timer.total_s)


def _timed(deliveries: list[RecordedDelivery], policy: Policy, repeat: int) -> tuple[ReplayResult, list[Run]]:
    runs: list[Run] = []
    result: ReplayResult | None = None
    for _ in range(max(1, repeat)):
        result = None  # free the previous run's states and rows before timing the next one
        gc.collect()
        result, run = _run(deliveries, policy)
        runs.append(run)
    assert result is not None
    return result, runs


def _profiled(deliveries: list[RecordedDelivery], policy: Policy) -> ReplayResult:
    profiler = cProfile.Profile()
    gc.collect()
    result, run = profiler.runcall(_run, deliveries, policy)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"profiled replay: {run.wall_s:.2f} s wall under cProfile (slower than unprofiled)\n")
    print(f"--- top {PROFILE_TOP} by cumulative time ---")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PROFILE_TOP)
    print(f"--- top {PROFILE_TOP} by own time ---")
    stats.sort_stats(pstats.SortKey.TIME).print_stats(PROFILE_TOP)
    _print_own_time_by_file(stats)
    return result


def _print_own_time_by_file(stats: pstats.Stats) -> None:
    """Own time summed per source file: a flat profile's hot spots show up here, not in the top lists."""
    by_file: Counter[str] = Counter()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, _, own_s, *_) in raw.items():
        by_file[_short_path(filename)] += own_s
    total_s = sum(by_file.values()) or 1.0
    print(f"--- own time by file (total {total_s:.2f} s) ---")
    for filename, own_s in by_file.most_common(PROFILE_TOP):
        print(f"{own_s:8.2f} s {100 * own_s / total_s:5.1f}%  {filename}")
    print()


def _short_path(filename: str) -> str:
    if filename == "~":
        return "~ (built-in functions and methods)"
    installed = _INSTALLED.match(filename)
    if installed:
        return ("" if installed.group(1) else "stdlib/") + filename[installed.end() :]
    return filename.removeprefix(str(Path.cwd()) + "/")


def _peak_rss_kib() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes; this benchmark documents Linux numbers).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --- reporting ------------------------------------------------------------------------------------------


def _print_counts(
    log: SyntheticLog,
    deliveries: list[RecordedDelivery],
    result: ReplayResult,
    generate_s: float,
    parse_s: float,
) -> None:
    kinds = Counter(row["kind"] for row in result.rows)
    triggers = {row["trigger_id"] for row in result.triggers()}
    timer_decisions = sum(1 for row in result.rows if row["kind"] == "decision" and row["cause"] == "timer")
    outcomes = ", ".join(f"{k.value}={v}" for k, v in result.outcomes.items())
    first, last = log.plans[0].game_date, log.plans[-1].game_date
    print(f"dates               {len(log.plans)} ({first} .. {last})")
    print(f"deliveries          {len(deliveries)} ({outcomes})")
    print(
        f"injected            {log.redeliveries} redeliveries, {log.out_of_order} out of order, "
        f"{log.malformed} malformed, {sum(not p.complete for p in log.plans)} dates missing a critical input"
    )
    print(f"generate            {generate_s:.2f} s (not timed below)")
    print(f"parse               {parse_s:.2f} s read_recording ({len(deliveries) / parse_s:,.0f} lines/s)")
    print(f"timeline rows       {len(result.timeline)} (audit rows {len(result.rows)})")
    print(f"triggers published  {len(triggers)} trigger_ids, {kinds['trigger']} trigger messages")
    # Replay does not expose how many timers fired; decisions caused by a timer are the visible part.
    print(f"decisions           {kinds['decision']} ({timer_decisions} caused by a timer)")
    print(f"alerts              {kinds['alert']}, dead letters {kinds['dead_letter']}")


def _print_timings(n_deliveries: int, runs: list[Run]) -> None:
    walls = [run.wall_s for run in runs]
    best, median = min(runs, key=lambda run: run.wall_s), statistics.median(walls)
    listed = ", ".join(f"{w:.2f}" for w in walls)
    summary = f"best {best.wall_s:.2f} s, median {median:.2f} s over {len(runs)} run(s): {listed}"
    print(f"replay wall         {summary}")
    rates = f"{n_deliveries / best.wall_s:,.0f} deliveries/s best, {n_deliveries / median:,.0f} median"
    print(f"throughput          {rates}")
    print(
        f"best run split      {best.inside_s:.2f} s inside replay(), "
        f"{best.wall_s - best.inside_s:.2f} s anyio.run setup/teardown; cyclic GC {best.gc_s:.2f} s in total"
    )


def _print_write_time(result: ReplayResult) -> None:
    """`cascade replay --out` also writes the timeline; timed once, on its own, not part of the wall above."""
    timeline = result.timeline
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_timeline(timeline, Path(tmp) / "timeline.jsonl")
        write_s = time.perf_counter() - started
    per_row_us = write_s * 1e6 / len(timeline)
    print(f"write timeline      {write_s:.2f} s for {len(timeline)} rows ({per_row_us:.1f} us/row)")


# --- the guard ------------------------------------------------------------------------------------------


def guard(log: SyntheticLog, result: ReplayResult) -> list[str]:
    """What is wrong with the replay's outcome, given what the generator put in; empty when all is well."""
    problems: list[str] = []
    trigger_ids: defaultdict[str, set[str]] = defaultdict(set)
    for row in result.triggers():
        trigger_ids[row["game_date"]].add(row["trigger_id"])
    for plan in log.plans:
        day = plan.game_date.isoformat()
        got = len(trigger_ids.get(day, ()))
        if got != plan.expected_triggers:
            what = "complete" if plan.complete else f"broken at {plan.broken_transition}"
            problems.append(f"{day} ({what}): {got} trigger_ids, expected {plan.expected_triggers}")
        if plan.broken_transition is not None:
            state = result.states.get(Key(plan.game_date, plan.broken_transition))
            if state is None or state.phase is not Phase.FAILED:
                phase = state.phase.value if state else "never opened"
                problems.append(f"{day}: {plan.broken_transition} is {phase}, expected failed")
    problems.extend(_count_problems(log, result))
    return problems


def _count_problems(log: SyntheticLog, result: ReplayResult) -> list[str]:
    problems = []
    expected = {Delivery.DUPLICATE: log.redeliveries, Delivery.DEAD_LETTERED: log.malformed}
    for outcome, want in expected.items():
        if result.outcomes[outcome] != want:
            problems.append(f"{outcome.value}: {result.outcomes[outcome]}, expected {want}")
    phases: Counter[Phase] = Counter(state.phase for state in result.states.values())
    unsettled = sum(n for phase, n in phases.items() if phase not in (Phase.TRIGGERED, Phase.FAILED))
    if unsettled:
        problems.append(f"{unsettled} (date, transition) keys neither triggered nor failed: {dict(phases)}")
    return problems


def _verdict(log: SyntheticLog, problems: list[str]) -> str:
    complete = sum(p.complete for p in log.plans)
    if problems:
        return f"{len(problems)} problem(s) in the replay's outcome"
    return (
        f"{complete} complete dates x {len(STAGES)} trigger_ids, "
        f"{len(log.plans) - complete} broken dates failed at their broken transition, "
        "duplicates and dead letters as injected"
    )


if __name__ == "__main__":
    sys.exit(main())
