"""The report of `bench.router_cost`: machine facts, and one table with cascade, relay, ratio and target."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine_facts() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpuinfo("model name"),
        "mem_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_1m_start": os.getloadavg()[0],
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _cpuinfo(field: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(field):
            return line.split(":", 1)[1].strip()
    return "?"


def _meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _git(*argv: str) -> str:
    result = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip()


# --- targets (issue 7) ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    label: str
    value: Callable[[dict[str, Any]], float | None]
    fmt: str
    target: str
    met: Callable[[float, float | None], bool] | None  # (cascade, relay) -> met; None: no target


def _get(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def value(result: dict[str, Any]) -> float | None:
        node: Any = result
        for step in path:
            if not isinstance(node, dict) or step not in node:
                return None
            node = node[step]
        return float(node)

    return value


ROWS = (
    Row("round trips pulled→trigger, median", _get("round_trips", "median"), "{:.0f}", "", None),
    Row("round trips pulled→trigger, max", _get("round_trips", "max"), "{:.0f}", "≤ 4", lambda c, r: c <= 4),
    Row(
        "router CPU per event (ms)",
        _get("cpu_ms_per_event"),
        "{:.2f}",
        "≤ 1.5 and ≤ 3x relay",
        lambda c, r: c <= 1.5 and (r is None or c <= 3 * r),
    ),
    Row("Firestore RPCs per event", _get("firestore_per_event"), "{:.2f}", "≤ 2.5", lambda c, r: c <= 2.5),
    Row("Pub/Sub requests per event", _get("pubsub_per_event"), "{:.2f}", "≤ 1.2", lambda c, r: c <= 1.2),
    Row("trigger latency p50 (ms)", _get("latency_ms", "p50"), "{:.0f}", "", None),
    Row(
        "trigger latency p99 (ms)",
        _get("latency_ms", "p99"),
        "{:.0f}",
        "≤ 1.5x relay",
        lambda c, r: r is not None and c <= 1.5 * r,
    ),
)


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    cascade, relay = results.get("cascade"), results.get("relay")
    met: dict[str, bool] = {}
    if cascade is None:
        return met
    for row in ROWS:
        c = row.value(cascade)
        if row.met is None or c is None:
            continue
        met[row.label] = row.met(c, row.value(relay) if relay is not None else None)
    return met


def table(results: dict[str, Any]) -> str:
    cascade, relay = results.get("cascade") or {}, results.get("relay") or {}
    options, machine = results["options"], results["machine"]
    met = verdicts(results)
    lines = [
        f"router cost: {options['dates']} game dates, {options['events']} events at {options['rate']:g}/s, "
        f"{options['instances']} instance(s), {options['warmup_dates']} warm-up date(s); "
        "fresh emulators per system",
        f"machine: {machine['cores']} cores ({machine['cpu']}), Python {machine['python']}, "
        f"commit {machine['commit']}{' (dirty)' if machine['dirty'] else ''}, "
        f"load average at start {machine['loadavg_1m_start']:.2f}",
        "",
        f"{'':38} {'cascade':>9} {'relay':>9} {'ratio':>7}  {'target':<22} met",
    ]
    for row in ROWS:
        c, r = row.value(cascade), row.value(relay)
        ratio = f"{c / r:.1f}x" if c is not None and r else "-"
        verdict = "" if row.label not in met else ("yes" if met[row.label] else "NO")
        values = f"{_fmt(row.fmt, c):>9} {_fmt(row.fmt, r):>9} {ratio:>7}"
        lines.append(f"{row.label:38} {values}  {row.target:<22} {verdict}")
    lines += ["", *_details("cascade", cascade), *_details("relay", relay)]
    if met:
        lines.append(
            f"targets met: {sum(met.values())} of {len(met)}"
            + ("" if all(met.values()) else f" (not met: {', '.join(k for k, v in met.items() if not v)})")
        )
    return "\n".join(lines)


def _fmt(fmt: str, value: float | None) -> str:
    return "-" if value is None else fmt.format(value)


def _details(name: str, result: dict[str, Any]) -> list[str]:
    if not result:
        return []
    events = result["events"]

    def per_event(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} {v / events:.2f}" for k, v in counts.items()) or "none"

    others = result["others"]
    busy = "; ".join(f"{cmd} {cpu:.1f} s" for cmd, cpu in others["top"])
    drain_s = result["window_s"] - result["publish_s"]
    behind = (
        f"  ** did not keep up: {drain_s:.1f} s after the last publish to finish; trigger latency is mostly "
        "queueing **"
        if drain_s > 1.0
        else ""
    )
    lines = [
        f"{name}: window {result['window_s']:.1f} s = {result['events_per_s']:.0f} events/s (publishing "
        f"{result['publish_s']:.1f} s, at most {result['publish_max_late_s'] * 1000:.0f} ms behind schedule, "
        f"{result['publish_failed']} failed); CPU {result['cpu_s']:.2f} s; "
        f"peak RSS {result['max_rss_mib']:.0f} MiB",
        *([behind] if behind else []),
        f"  keys expected {result['keys_expected']}, missing {result['keys_missing']}"
        + (f" ({', '.join(result['missing'])})" if result["missing"] else "")
        + f", unexpected {result['keys_unexpected']}"
        + ("" if result["warmup_complete"] else "; the warm-up did not complete either")
        + ("" if result["complete"] else "  ** INCOMPLETE: the window ended at the drain timeout **"),
        f"  Firestore RPCs per event: {per_event(result['firestore_rpcs'])}",
        f"  Pub/Sub requests per event: {per_event(result['pubsub_requests'])}",
        f"  other requests per event: {per_event(result['other_requests'])}",
        f"  round trips histogram: {result['round_trips'].get('histogram', {})}; "
        f"triggers outside a handler: {result['untraced_triggers']}; nacked: {result['nacked']}",
        "  emulator CPU per event (ms): "
        + ", ".join(f"{k} {v:.2f}" for k, v in result["emulator_cpu_ms_per_event"].items())
        + f"; load generator and watcher (this process) {result['harness_cpu_ms_per_event']:.2f}",
        f"  other processes during the window: {others['cpu_s']:.1f} CPU-s ({others['cores_busy']:.2f} cores)"
        + (f": {busy}" if busy else ""),
    ]
    return lines
