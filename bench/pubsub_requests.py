"""Pub/Sub requests the consumer makes per 1,000 handled messages, on the emulator (issue 7).

    python -m bench.pubsub_requests [--messages 1000] [--rate 0] [--handler-ms 20] [--ack-batch-delay-s 0.05]

Starts the emulator (tests/support/emulators.py), publishes `--messages` messages (all at once with
`--rate 0`, else paced at that many per second), and consumes them with `PubSubSource` whose handler takes
`--handler-ms`. Every request the source sends is counted by kind (pull, acknowledge, modifyAckDeadline) with
an aiohttp `TraceConfig` on its own session; the publisher has another session and is not counted. The
source is stopped once every message was handled, so its final flush is counted too. Deliveries of a message
id seen before are reported as redeliveries.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
import anyio

from adapters.ports import Outgoing
from adapters.pubsub import PubSubPublisher, PubSubSource
from adapters.pubsub_admin import PubSubAdmin
from adapters.source import Received
from tests.support.emulators import PROJECT, pubsub_emulator
from tests.support.http_trace import counting_session


async def publish(publisher: PubSubPublisher, topic: str, messages: int, rate: float) -> None:
    if rate <= 0:
        for start in range(0, messages, 500):
            chunk = range(start, min(start + 500, messages))
            await publisher.publish_many(topic, [Outgoing(f"m{n}".encode(), {}) for n in chunk])
        return
    began = time.monotonic()
    for n in range(messages):
        await anyio.sleep(max(0.0, began + n / rate - time.monotonic()))  # pacing the load, not waiting
        await publisher.publish(topic, f"m{n}".encode(), {})


async def measure(api_root: str, args: argparse.Namespace) -> dict[str, Any]:
    topic = f"bench-requests-{uuid.uuid4().hex[:8]}"
    counts: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    all_handled = anyio.Event()

    async def handle(received: Received) -> None:
        await anyio.sleep(args.handler_ms / 1000)
        seen[received.message_id] += 1
        if len(seen) == args.messages:
            all_handled.set()

    async with aiohttp.ClientSession() as plain, counting_session(counts) as counted:
        admin = PubSubAdmin(PROJECT, plain, api_root)
        await admin.ensure_topic(topic)
        await admin.ensure_subscription(f"{topic}-sub", topic)
        publisher = PubSubPublisher(PROJECT, session=plain, api_root=api_root)
        source = PubSubSource(
            PROJECT, {f"{topic}-sub": topic}, session=counted, api_root=api_root, **batching_options(args)
        )
        began = time.monotonic()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(source.run, handle)
            await publish(publisher, topic, args.messages, args.rate)
            with anyio.fail_after(120):
                await all_handled.wait()
            tasks.cancel_scope.cancel()
        elapsed_s = time.monotonic() - began
    per_1000 = {kind: count * 1000 / args.messages for kind, count in sorted(counts.items())}
    return {
        "per_1000": per_1000,
        "elapsed_s": elapsed_s,
        "redelivered": sum(n - 1 for n in seen.values()),
    }


def batching_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ack batching knobs, when this version of `PubSubSource` has them (so `main` can be measured)."""
    accepted = inspect.signature(PubSubSource).parameters
    wanted = {"ack_batch_max": args.ack_batch_max, "ack_batch_delay_s": args.ack_batch_delay_s}
    return {name: value for name, value in wanted.items() if name in accepted}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second; 0: all at once")
    parser.add_argument("--handler-ms", type=float, default=20.0)
    parser.add_argument("--ack-batch-max", type=int, default=100)
    parser.add_argument("--ack-batch-delay-s", type=float, default=0.05)
    args = parser.parse_args(argv)

    emulator = pubsub_emulator().start()
    try:
        result = anyio.run(measure, f"http://{emulator.host_port}/v1", args)
    finally:
        emulator.stop()
    knobs = batching_options(args) or "none (one ack request per message)"
    rate = args.rate or "burst"
    print(f"{args.messages} messages, rate {rate}, handler {args.handler_ms} ms, batching {knobs}")
    for kind, per_1000 in result["per_1000"].items():
        print(f"  {kind:>18}: {per_1000:7.1f} requests per 1,000 messages")
    print(f"  {'elapsed':>18}: {result['elapsed_s']:7.2f} s, redelivered {result['redelivered']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
