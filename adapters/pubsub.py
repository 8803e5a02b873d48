"""Google Pub/Sub adapters on gcloud-aio-pubsub's REST clients: `PubSubPublisher` and `PubSubSource`.

Vendor errors are translated here, at the edge: 5xx, 429, 408, timeouts and connection errors are
`TransientError`; a failed publish is `PublishError` (never reported as success); a missing subscription is a
`ConfigurationError`.

Why the source has its own pull loops instead of gcloud-aio's `subscribe()`: a pull request that the client
abandons (its timeout fires while the server still holds it open) stays registered on the server and can
swallow the next message, which then arrives only when its ack deadline runs out. `subscribe()` abandons every
idle pull after 30 s while the emulator holds one for ~90 s; measured here, a message swallowed that way came
10-30 s late (bench/pubsub_latency.py --pull-timeout-s 30). So a pull is never abandoned on purpose: its
client timeout (`pull_timeout_s`) is longer than the server's hold, and the next pull starts at once when one
returns, empty or not.
"""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import aiohttp
import anyio
import anyio.abc
from gcloud.aio.pubsub import PublisherClient, PubsubMessage, SubscriberClient
from gcloud.aio.pubsub.subscriber_client import init_api_root
from gcloud.aio.pubsub.subscriber_message import parse_publish_time

from adapters.connection import connection_failure
from adapters.errors import CascadeError, ConfigurationError, PublishError, TransientError
from adapters.ports import Outgoing
from adapters.pubsub_acks import MAX_ACK_IDS_PER_REQUEST, AckBatcher
from adapters.source import Handler, Received, settle

log = logging.getLogger("cascade.pubsub")

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def topic_path(project: str, topic: str) -> str:
    return f"projects/{project}/topics/{topic}"


def subscription_path(project: str, subscription: str) -> str:
    return f"projects/{project}/subscriptions/{subscription}"


def is_retryable(exc: BaseException) -> bool:
    """Whether a vendor exception is worth retrying (the service or the network, not the request)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status in RETRYABLE_STATUS or exc.status >= 500
    return isinstance(exc, aiohttp.ClientError | TimeoutError | OSError)


def describe(exc: BaseException) -> str:
    """A one-line account of a vendor error for logs and our own exceptions (no request dump)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}: {_error_message(exc.message)[:300]}"
    return connection_failure("Pub/Sub", exc) or repr(exc)


def _error_message(message: str) -> str:
    """The `error.message` of a Google API error; gcloud-aio's message is `{reason}: {response body}`."""
    try:
        return str(json.loads(message.partition(": ")[2])["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return message


def status_of(exc: BaseException) -> int | None:
    return exc.status if isinstance(exc, aiohttp.ClientResponseError) else None


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Jittered exponential backoff for retry number `attempt` (0-based): between half and all of the cap."""
    cap = min(max_s, initial_s * 2**attempt)
    return random.uniform(cap / 2, cap)


@asynccontextmanager
async def http_session(session: aiohttp.ClientSession | None) -> AsyncIterator[aiohttp.ClientSession]:
    """Use the caller's session, or own one for the duration (created in the running loop, closed after)."""
    if session is not None:
        yield session
        return
    owned = aiohttp.ClientSession()
    try:
        yield owned
    finally:
        with anyio.CancelScope(shield=True):
            await owned.close()


# gcloud-aio's stubs type the session as `requests.Session` (its sync twin); at run time it is aiohttp's.
def publisher_client(session: aiohttp.ClientSession, api_root: str | None) -> PublisherClient:
    return PublisherClient(session=session, api_root=api_root)  # type: ignore[arg-type]


def subscriber_client(session: aiohttp.ClientSession, api_root: str | None) -> SubscriberClient:
    return SubscriberClient(session=session, api_root=api_root)  # type: ignore[arg-type]


# --- publishing -----------------------------------------------------------------------------------------


class PubSubPublisher:
    """`Publisher` on Pub/Sub. Retries transient failures with jittered exponential backoff.

    Use as `async with PubSubPublisher(...) as publisher:` (or call `aclose()`) so an owned HTTP session is
    closed. A retried publish may have gone through the first time: delivery is at least once, and consumers
    deduplicate by `trigger_id`.
    """

    def __init__(
        self,
        project: str,
        session: aiohttp.ClientSession | None = None,
        api_root: str | None = None,
        attempts: int = 5,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        timeout_s: int = 10,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._project = project
        self._session = session
        self._api_root = api_root
        self._attempts = attempts
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._timeout_s = timeout_s
        self._owned: aiohttp.ClientSession | None = None
        self._client: PublisherClient | None = None

    async def __aenter__(self) -> PubSubPublisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned is not None:
            with anyio.CancelScope(shield=True):
                await self._owned.close()
            self._owned = None
        self._client = None

    def _publisher(self) -> PublisherClient:
        # Created on first use, inside the running event loop (aiohttp insists on that).
        if self._client is None:
            session = self._session
            if session is None:
                session = self._owned = aiohttp.ClientSession()
            self._client = publisher_client(session, self._api_root)
        return self._client

    async def publish(
        self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str | None = None
    ) -> str:
        return (await self.publish_many(topic, [Outgoing(data, attributes, ordering_key)]))[0]

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        """All `messages` in one publish request (Pub/Sub takes up to 1,000 / 10 MB per request)."""
        batch = [_pubsub_message(m) for m in messages]
        path = topic_path(self._project, topic)
        for attempt in range(self._attempts):
            try:
                response = await self._publisher().publish(path, batch, timeout=self._timeout_s)
                return [str(message_id) for message_id in response["messageIds"]]
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if not is_retryable(exc):
                    raise PublishError(f"publish to {topic} rejected: {describe(exc)}") from exc
                if attempt + 1 == self._attempts:
                    # Not answering is about the service, not this topic: the sentence says it all.
                    unreachable = connection_failure("Pub/Sub", exc)
                    raise PublishError(
                        unreachable
                        or f"publish to {topic} failed after {self._attempts} attempts: {describe(exc)}"
                    ) from exc
                delay_s = backoff_s(attempt, self._backoff_initial_s, self._backoff_max_s)
                log.warning("publish to %s failed (%s); retry in %.2f s", topic, describe(exc), delay_s)
                await anyio.sleep(delay_s)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise PublishError(f"publish to {topic}: unexpected answer: {exc!r}") from exc
        raise AssertionError("unreachable")  # the loop returns or raises


def _pubsub_message(outgoing: Outgoing) -> PubsubMessage:
    message = PubsubMessage(outgoing.data, ordering_key=outgoing.ordering_key or "")
    # Set directly: attributes passed as keyword arguments would collide with `data` and `ordering_key`.
    message.attributes = {str(k): str(v) for k, v in outgoing.attributes.items()}
    return message


# --- consuming ------------------------------------------------------------------------------------------


class PubSubSource:
    """`EventSource` over pull subscriptions: one pull loop per subscription, all in one task group.

    - Flow control: at most `max_in_flight` handlers run at once; a pull asks for no more messages than there
      are free slots (at least one), so at most `pull_max_messages` per subscription wait for a slot.
    - Ack after `handle` returns; nack (ack deadline 0: redelivered as soon as the subscription's retry policy
      allows) when it raises or is cancelled.
    - Acks and nacks are batched per subscription (`adapters.pubsub_acks`): one request once `ack_batch_max`
      ids wait, or `ack_batch_delay_s` after the first of them began to wait. On shutdown what is queued is
      sent (shielded, at most `settle_timeout_s`).
    - Lease: every `ack_extension_s`, messages held at least that long get their deadline extended to
      `lease_s`; keep `ack_extension_s` below half the subscription's ack deadline (10 s by default). A
      message stays held (leased) until its ack request is over; a nacked one is let go at once (extending
      it would undo the nack).
    - Pulls: `pull_timeout_s` must exceed the server's hold of an empty pull (emulator: ~90 s), see the
      module docstring.
    """

    def __init__(
        self,
        project: str,
        subscriptions: Mapping[str, str],
        max_in_flight: int = 64,
        pull_max_messages: int = 32,
        ack_extension_s: float = 3.0,
        lease_s: int = 30,
        pull_timeout_s: float = 120.0,
        session: aiohttp.ClientSession | None = None,
        api_root: str | None = None,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        ack_batch_max: int = 100,
        ack_batch_delay_s: float = 0.2,
        settle_timeout_s: float = 5.0,
    ) -> None:
        if max_in_flight < 1 or pull_max_messages < 1:
            raise ValueError("max_in_flight and pull_max_messages must be at least 1")
        if lease_s <= 2 * ack_extension_s:
            raise ValueError("lease_s must exceed two extension periods")
        if not 1 <= ack_batch_max <= MAX_ACK_IDS_PER_REQUEST:
            raise ValueError(f"ack_batch_max must be between 1 and {MAX_ACK_IDS_PER_REQUEST}")
        if not 0 <= ack_batch_delay_s < ack_extension_s:
            # A longer wait would cost lease extensions for messages that are only waiting for their ack.
            raise ValueError("ack_batch_delay_s must be at least 0 and below ack_extension_s")
        self._project = project
        self._subscriptions = dict(subscriptions)
        self._max_in_flight = max_in_flight
        self._pull_max_messages = pull_max_messages
        self._ack_extension_s = ack_extension_s
        self._lease_s = lease_s
        self._pull_timeout_s = pull_timeout_s
        self._session = session
        self._api_root = api_root
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._ack_batch_max = ack_batch_max
        self._ack_batch_delay_s = ack_batch_delay_s
        self._settle_timeout_s = settle_timeout_s

    async def run(self, handle: Handler) -> None:
        async with http_session(self._session) as session:
            client = subscriber_client(session, self._api_root)
            slots = anyio.Semaphore(self._max_in_flight)
            async with anyio.create_task_group() as tasks:
                for subscription, topic in self._subscriptions.items():
                    loop = _SubscriptionLoop(self, client, subscription, topic, handle, slots)
                    tasks.start_soon(loop.run)


class _SubscriptionLoop:
    """Pull, hand out, lease and settle (in batches) the messages of one subscription."""

    def __init__(
        self,
        source: PubSubSource,
        client: SubscriberClient,
        subscription: str,
        topic: str,
        handle: Handler,
        slots: anyio.Semaphore,
    ) -> None:
        self._s = source
        self._client = client
        self._subscription = subscription
        self._topic = topic
        self._path = subscription_path(source._project, subscription)
        self._handle = handle
        self._slots = slots
        self._held: dict[str, float] = {}  # ack_id → when pulled (monotonic); leased until settled
        self._api_root = init_api_root(source._api_root)[1]
        self._acks = AckBatcher(
            self._settle_request,
            self._release,
            subscription,
            batch_max=source._ack_batch_max,
            delay_s=source._ack_batch_delay_s,
        )

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._lease)
                tasks.start_soon(self._acks.run)
                await self._pull_forever(tasks)
        finally:
            await self._flush_acks()

    async def _pull_forever(self, tasks: anyio.abc.TaskGroup) -> None:
        failures = 0
        while True:
            await self._wait_for_a_free_slot()
            want = max(1, min(self._s._pull_max_messages, self._slots.value))
            try:
                raw = await self._pull(want)
            except TransientError as exc:
                delay_s = backoff_s(failures, self._s._retry_initial_s, self._s._retry_max_s)
                failures += 1
                log.warning("pull from %s failed (%s); again in %.2f s", self._subscription, exc, delay_s)
                await anyio.sleep(delay_s)
                continue
            failures = 0
            now = anyio.current_time()
            for item in raw:
                received, ack_id = self._decode(item)
                self._held[ack_id] = now
                tasks.start_soon(self._handle_one, received, ack_id)

    async def _wait_for_a_free_slot(self) -> None:
        # Pull only when a handler could start now; otherwise wait for one to finish.
        while self._slots.value == 0:
            await self._slots.acquire()
            self._slots.release()

    async def _pull(self, max_messages: int) -> list[dict[str, Any]]:
        # Raw pull (the same request as SubscriberClient.pull): SubscriberMessage drops the orderingKey.
        url = f"{self._api_root}/{self._path}:pull"
        body = json.dumps({"maxMessages": max_messages}).encode()
        try:
            headers = await self._client._headers()
            response = await self._client.session.post(
                url, data=body, headers=headers, timeout=self._s._pull_timeout_s
            )
            answer = await response.json()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if status_of(exc) == 404:
                raise ConfigurationError(f"subscription {self._path} does not exist") from exc
            if isinstance(exc, TimeoutError):
                log.warning(
                    "pull from %s outlived %.0f s and was abandoned; a message may be late until its ack "
                    "deadline (raise pull_timeout_s)",
                    self._subscription,
                    self._s._pull_timeout_s,
                )
            raise TransientError(f"pull {self._subscription}: {describe(exc)}") from exc
        messages: list[dict[str, Any]] = answer.get("receivedMessages", [])
        return messages

    def _decode(self, item: Mapping[str, Any]) -> tuple[Received, str]:
        message = item["message"]
        publish_time: datetime | None = None
        if message.get("publishTime"):
            publish_time = parse_publish_time(message["publishTime"])
        data = message.get("data")
        received = Received(
            topic=self._topic,
            subscription=self._subscription,
            message_id=str(message["messageId"]),
            data=base64.b64decode(data) if data else b"",
            attributes=dict(message.get("attributes") or {}),
            publish_time=publish_time,
            delivery_attempt=item.get("deliveryAttempt"),
            ordering_key=message.get("orderingKey") or None,
        )
        return received, str(item["ackId"])

    async def _handle_one(self, received: Received, ack_id: str) -> None:
        ack = False
        try:
            async with self._slots:
                ack = await settle(self._handle, received)
        finally:
            # Also when cancelled (shutdown): finished work is acked, work cut short is nacked (prompt
            # redelivery, to this or another instance). Queuing never awaits; `run` flushes the queue last.
            if not ack:
                self._held.pop(ack_id, None)  # let the lease go: an extension after the nack would undo it
            self._acks.add(ack_id, ack)

    def _release(self, ack_ids: list[str]) -> None:
        """The ack request for `ack_ids` is over: stop extending their leases."""
        for ack_id in ack_ids:
            self._held.pop(ack_id, None)

    async def _flush_acks(self) -> None:
        # Shielded so a shutdown still settles what it can, and bounded so it cannot hold the shutdown up.
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._s._settle_timeout_s) as scope:
            await self._acks.flush()
        if scope.cancelled_caught:
            log.warning(
                "%d acks/nacks on %s not sent within %.1f s of stopping; those messages are redelivered",
                self._acks.waiting,
                self._subscription,
                self._s._settle_timeout_s,
            )

    async def _settle_request(self, ack_ids: list[str], ack: bool) -> None:
        """One acknowledge (ack) or modifyAckDeadline 0 (nack) request for `ack_ids`, errors translated."""
        try:
            if ack:
                await self._client.acknowledge(self._path, ack_ids)
            else:
                await self._client.modify_ack_deadline(self._path, ack_ids, 0)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            what = f"{'ack' if ack else 'nack'} of {len(ack_ids)} on {self._subscription}: {describe(exc)}"
            if is_retryable(exc):
                raise TransientError(what) from exc
            raise CascadeError(what) from exc

    async def _lease(self) -> None:
        """Extend the deadline of every message held longer than `ack_extension_s`, in one call per tick."""
        while True:
            await anyio.sleep(self._s._ack_extension_s)
            horizon = anyio.current_time() - self._s._ack_extension_s
            due = [ack_id for ack_id, pulled_at in self._held.items() if pulled_at <= horizon]
            if not due:
                continue
            try:
                await self._client.modify_ack_deadline(self._path, due, self._s._lease_s)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning(
                    "could not extend %d leases on %s: %s", len(due), self._subscription, describe(exc)
                )
