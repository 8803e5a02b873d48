"""What cascade costs per completion event, next to a bare relay measured in the same run (issue 7).

    python -m bench.router_cost [--events 3000 | --dates N] [--rate 100] [--instances 1] [--warmup-dates 1]
    make bench-cost                  # the same, EVENTS=3000 RATE=100 INSTANCES=1

For each system in turn, on a fresh emulator stack (`bench.cost_stack`: Pub/Sub for the relay; Pub/Sub,
Firestore and BigQuery for cascade; started here on free ports, stopped after):
  1. `cascade provision`, so both consume the same subscriptions;
  2. `--instances` processes under `bench.cost_probe`: the real `cascade run`, or the bare relay
     (`bench.relay`); the probe counts their Firestore RPCs and HTTP requests at the transport;
  3. warm-up: `--warmup-dates` game dates, not measured (connections, lazy imports, first requests);
  4. the measured window (`bench.cost_window`): `bench.cost_load`'s completion messages, one every 1/rate s,
     until every expected trigger (relay: every relayed completing input) has been pulled by the watcher
     and every message has been acked; counters and CPU are read at both ends and divided by the events.

Prints one table (cascade, relay, ratio, target, met), details, and last one JSON line with everything.
Exit status 0 whatever the numbers: a measurement, not a test. On a shared 2-core machine the emulators
compete with the router for CPU; the report says what the emulators and other processes used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio

from bench import cost_report
from bench.cost_load import Load, build_load
from bench.cost_stack import SYSTEMS, System, open_stack
from bench.cost_window import Pace, Window
from ops.policy_file import load_policy
from policies.model import Policy

EVENTS_PER_DATE = 16.3  # bench.synthetic: 16 completions per date, plus ~2.5 % redeliveries and malformed
FIRST_DATE_IN_DAYS = 2  # game dates start the day after tomorrow (ET): no deadline falls due in a run


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    dates: int
    warmup_dates: int = 1
    rate: float = 100.0
    instances: int = 1
    drain_timeout_s: float = 60.0


def run(options: Options, systems: Sequence[System] = SYSTEMS, workdir: Path | None = None) -> dict[str, Any]:
    """Measure each system in turn; the whole result as plain data (what the JSON line holds). The processes'
    logs go to `workdir` (default: a temporary directory, removed after)."""
    policy = load_policy(None)
    today = datetime.now(UTC).astimezone(ZoneInfo(policy.timezone)).date()
    first_date = today + timedelta(days=FIRST_DATE_IN_DAYS)
    load = build_load(policy, options.dates, options.warmup_dates, first_date)
    results: dict[str, Any] = {
        "options": {**dataclasses.asdict(options), "events": load.measured.events, "dropped": load.dropped},
        "machine": cost_report.machine_facts(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with contextlib.ExitStack() as cleanup:
        if workdir is None:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="cascade-bench-cost-")))
        for system in systems:
            note = f"# {system}: fresh emulators, {options.instances} instance(s) ..."
            print(note, file=sys.stderr, flush=True)
            results[system] = measure(system, load, options, policy, workdir)
    return results


def measure(system: System, load: Load, options: Options, policy: Policy, workdir: Path) -> dict[str, Any]:
    with open_stack(system, policy, options.instances, workdir) as stack:
        window = Window(stack, load, Pace(options.rate, options.drain_timeout_s))
        try:
            return anyio.run(window.measure)
        except Exception:
            sys.stderr.write(stack.logs())
            raise


def _options(argv: Sequence[str] | None) -> tuple[Options, list[System], Path | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.router_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--events", type=int, default=3000, help="about this many events, in whole dates (3000)"
    )
    size.add_argument("--dates", type=int, help="this many game dates (about 16.3 events each)")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second (default 100)")
    parser.add_argument("--instances", type=int, default=1, help="cascade (and relay) processes (default 1)")
    parser.add_argument("--warmup-dates", type=int, default=1, help="unmeasured dates first (default 1)")
    parser.add_argument(
        "--drain-timeout-s",
        type=float,
        default=60.0,
        help="how long to wait for the last trigger (default 60)",
    )
    parser.add_argument("--only", choices=SYSTEMS, help="measure one system only")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR", help="keep the processes' logs in DIR")
    args = parser.parse_args(argv)
    dates = args.dates if args.dates is not None else math.ceil(args.events / EVENTS_PER_DATE)
    if dates < 1 or args.rate <= 0 or args.instances < 1 or args.warmup_dates < 0:
        parser.error("--events/--dates, --rate and --instances must be positive; --warmup-dates not negative")
    options = Options(dates, args.warmup_dates, args.rate, args.instances, args.drain_timeout_s)
    if args.keep_logs is not None:
        args.keep_logs.mkdir(parents=True, exist_ok=True)
    return options, [args.only] if args.only else list(SYSTEMS), args.keep_logs


def main(argv: Sequence[str] | None = None) -> int:
    options, systems, logs = _options(argv)
    results = run(options, systems, logs)
    print(cost_report.table(results))
    print(json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
