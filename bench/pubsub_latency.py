"""Publish → handler latency through `PubSubSource` on the Pub/Sub emulator, after idle gaps and back to back.

    python -m bench.pubsub_latency [--gaps 5,35,45] [--burst 50] [--pull-timeout-s 120]

Starts the emulator (tests/support/emulators.py), runs a `PubSubSource` with a handler that only notes the
arrival time, publishes one warm-up message, then after each idle gap publishes one more and reports its
latency (the gaps straddle the ~30-40 s where gcloud-aio's `subscribe()` delivered late). Then `--burst`
messages are published one after another and p50/p99 reported. Exit status 1 when a message after an idle
gap took longer than `--limit-s` (default 1 s).

`--pull-timeout-s 30` reproduces the trap: pulls abandoned by the client swallow the next message.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import aiohttp
import anyio

from adapters.pubsub import PubSubPublisher, PubSubSource
from adapters.pubsub_admin import PubSubAdmin
from adapters.source import Received
from tests.support.emulators import PROJECT, pubsub_emulator

TOPIC, SUBSCRIPTION = "bench-latency", "bench-latency-sub"


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._changed = anyio.Event()

    async def handle(self, received: Received) -> None:
        self.at[received.data.decode()] = time.monotonic()
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, key: str, timeout_s: float) -> float:
        with anyio.fail_after(timeout_s):
            while key not in self.at:
                await self._changed.wait()
        return self.at[key]


async def measure(
    api_root: str, gaps_s: Sequence[float], burst: int, pull_timeout_s: float
) -> dict[str, float]:
    results: dict[str, float] = {}
    arrivals = Arrivals()
    async with aiohttp.ClientSession() as session:
        admin = PubSubAdmin(PROJECT, session, api_root)
        await admin.ensure_topic(TOPIC)
        await admin.ensure_subscription(SUBSCRIPTION, TOPIC)
        publisher = PubSubPublisher(PROJECT, session=session, api_root=api_root)
        source = PubSubSource(
            PROJECT, {SUBSCRIPTION: TOPIC}, session=session, api_root=api_root, pull_timeout_s=pull_timeout_s
        )

        async def one(key: str) -> float:
            sent = time.monotonic()
            await publisher.publish(TOPIC, key.encode(), {})
            return await arrivals.wait_for(key, timeout_s=120) - sent

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(source.run, arrivals.handle)
            results["first"] = await one("first")
            for gap_s in gaps_s:
                print(f"idle {gap_s:.0f} s ...", file=sys.stderr, flush=True)
                await anyio.sleep(gap_s)  # the idleness being measured, not synchronisation
                results[f"after {gap_s:.0f} s idle"] = await one(f"gap-{gap_s}")
            sent: dict[str, float] = {}
            for n in range(burst):
                sent[f"burst-{n}"] = time.monotonic()
                await publisher.publish(TOPIC, f"burst-{n}".encode(), {})
            latencies = [await arrivals.wait_for(key, 60) - at for key, at in sent.items()]
            tasks.cancel_scope.cancel()
    if latencies:
        results[f"burst p50 ({burst})"] = statistics.median(latencies)
        results[f"burst p99 ({burst})"] = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gaps", default="5,35,45", help="idle gaps in seconds, comma-separated")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--pull-timeout-s", type=float, default=120.0)
    parser.add_argument("--limit-s", type=float, default=1.0)
    args = parser.parse_args(argv)
    gaps_s = [float(g) for g in args.gaps.split(",") if g]

    emulator = pubsub_emulator().start()
    try:
        api_root = f"http://{emulator.host_port}/v1"
        results = anyio.run(measure, api_root, gaps_s, args.burst, args.pull_timeout_s)
    finally:
        emulator.stop()
    for name, seconds in results.items():
        print(f"{name:>24}: {seconds * 1000:8.1f} ms")
    late = {k: v for k, v in results.items() if "idle" in k and v > args.limit_s}
    if late:
        print(f"LATE after idleness (limit {args.limit_s} s): {sorted(late)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
