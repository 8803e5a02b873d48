"""CPU time of the processes on this machine, from /proc (Linux): who else was busy during a measurement."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcCpu:
    pid: int
    pgrp: int
    cpu_s: float  # user + system, this process's own threads (not its children)


def processes() -> dict[int, ProcCpu]:
    """Every process still readable now. One pass over /proc: a few milliseconds."""
    found: dict[int, ProcCpu] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name (field 2) may contain spaces and parentheses: split after its closing one.
        rest = text[text.rindex(")") + 2 :].split()
        cpu_ticks = int(rest[11]) + int(rest[12])
        found[int(entry.name)] = ProcCpu(int(entry.name), int(rest[2]), cpu_ticks / TICKS_PER_S)
    return found


def command_line(pid: int, limit: int = 90) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    text = raw.replace(b"\0", b" ").decode(errors="replace").strip() or f"pid {pid}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def group_cpu_s(snapshot: dict[int, ProcCpu], pgrp: int) -> float:
    return sum(p.cpu_s for p in snapshot.values() if p.pgrp == pgrp)


@dataclass(frozen=True, slots=True)
class Others:
    cpu_s: float
    top: list[tuple[str, float]]  # (command line, CPU seconds), busiest first


def others_between(
    before: dict[int, ProcCpu], after: dict[int, ProcCpu], ours_pids: set[int], ours_pgrps: set[int]
) -> Others:
    """CPU the processes that are not ours used between two snapshots (those alive at the end)."""
    used: list[tuple[int, float]] = []
    for pid, now in after.items():
        if pid in ours_pids or now.pgrp in ours_pgrps:
            continue
        then = before.get(pid)
        delta = now.cpu_s - (then.cpu_s if then is not None else 0.0)
        if delta > 0:
            used.append((pid, delta))
    used.sort(key=lambda item: -item[1])
    top = [(command_line(pid), d) for pid, d in used[:3] if d >= 0.05]
    return Others(sum(d for _, d in used), top)
