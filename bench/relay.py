"""The bare relay `bench.router_cost` compares cascade with: pull, republish, ack. No logic, no state.

    BENCH_PROJECT=p BENCH_RELAY_SUBSCRIPTIONS=a,b BENCH_RELAY_TOPIC=out PUBSUB_EMULATOR_HOST=h:p \
        python -m bench.cost_probe relay

gcloud-aio-pubsub's `SubscriberClient.pull` / `PublisherClient.publish` / `acknowledge` on one aiohttp
session, under uvloop like `cascade run`. One pull loop per subscription; each pulled batch is republished
one message per publish request, concurrently, then acked in one request (what failed to
publish is not acked, so it comes back). A pull's client timeout (120 s) is
above the emulator's ~90 s hold of an empty pull, so no pull is ever abandoned (see adapters/pubsub.py for
why that matters). Every message keeps its attributes, so the load generator can tell which one came back.
Runs until killed.
"""

from __future__ import annotations

import logging
import os

import aiohttp
import anyio
from gcloud.aio.pubsub import PublisherClient, PubsubMessage, SubscriberClient
from gcloud.aio.pubsub.subscriber_message import SubscriberMessage

from bench.cost_probe import message_trace

log = logging.getLogger("bench.relay")
PULL_MAX_MESSAGES = 32  # as cascade's PubSubSource
PULL_TIMEOUT_S = 120
RETRY_S = 0.2


class Relay:
    def __init__(self, project: str, session: aiohttp.ClientSession, api_root: str | None) -> None:
        self._project = project
        # gcloud-aio's stubs type the session as its sync twin's; at run time it is aiohttp's.
        self._subscriber = SubscriberClient(session=session, api_root=api_root)  # type: ignore[arg-type]
        self._publisher = PublisherClient(session=session, api_root=api_root)  # type: ignore[arg-type]

    async def run(self, subscriptions: list[str], topic: str) -> None:
        async with anyio.create_task_group() as tasks:
            for subscription in subscriptions:
                tasks.start_soon(self._pull_loop, tasks, subscription, topic)

    async def _pull_loop(self, tasks: anyio.abc.TaskGroup, subscription: str, topic: str) -> None:
        path = f"projects/{self._project}/subscriptions/{subscription}"
        while True:
            try:
                batch = await self._subscriber.pull(path, PULL_MAX_MESSAGES, timeout=PULL_TIMEOUT_S)
            except (aiohttp.ClientError, TimeoutError, OSError):
                await anyio.sleep(RETRY_S)
                continue
            if batch:
                tasks.start_soon(self._forward, path, batch, topic)

    async def _forward(self, path: str, batch: list[SubscriberMessage], topic: str) -> None:
        forwarded: list[str] = []
        async with anyio.create_task_group() as tasks:
            for message in batch:
                tasks.start_soon(self._republish, message, topic, forwarded)
        try:
            await self._subscriber.acknowledge(path, forwarded)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("ack failed (the messages come back): %r", exc)

    async def _republish(self, message: SubscriberMessage, topic: str, forwarded: list[str]) -> None:
        outgoing = PubsubMessage(message.data or b"")
        outgoing.attributes = dict(message.attributes or {})
        with message_trace():
            try:
                await self._publisher.publish(f"projects/{self._project}/topics/{topic}", [outgoing])
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning("republish failed (not acked, so it comes back): %r", exc)
                return
        forwarded.append(message.ack_id)


async def _serve(project: str, api_root: str | None, subscriptions: list[str], topic: str) -> None:
    async with aiohttp.ClientSession() as session:
        await Relay(project, session, api_root).run(subscriptions, topic)


def main() -> int:
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    api_root = f"http://{host}/v1" if host else None
    subscriptions = [s for s in os.environ["BENCH_RELAY_SUBSCRIPTIONS"].split(",") if s]
    anyio.run(
        _serve,
        os.environ["BENCH_PROJECT"],
        api_root,
        subscriptions,
        os.environ["BENCH_RELAY_TOPIC"],
        backend_options={"use_uvloop": True},
    )
    return 0
