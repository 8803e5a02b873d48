"""Idempotent Pub/Sub provisioning (`cascade provision`): every topic and subscription cascade needs.

Creating what exists already is fine (409). An existing subscription attached to a *different* topic is a
`ConfigurationError`: consuming it would silently read the wrong messages. Other settings of an existing
subscription (ack deadline, dead-letter policy) are left as they are and reported, not overwritten.

Dead-letter forwarding by the service (after `max_delivery_attempts` nacks) also needs IAM grants for the
Pub/Sub service agent (publisher on the dead-letter topic, subscriber on the subscription); that is outside
what this module does. The engine dead-letters malformed input itself, without the service.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from adapters.errors import ConfigurationError, TransientError
from adapters.pubsub import (
    describe,
    http_session,
    is_retryable,
    publisher_client,
    status_of,
    subscriber_client,
    subscription_path,
    topic_path,
)
from policies.model import Policy

log = logging.getLogger("cascade.provision")

DEAD_LETTER_TOPIC = "cascade-dead-letter"
STATUS_TOPICS = ("nba-orchestration-status", "nba-slo-violation")
# A nacked completion (the store was down) is redelivered after 10 s, 20 s, ... up to 10 min: without a
# backoff the service redelivers at once and a valid message would be dead-lettered by the service after
# `max_delivery_attempts` nacks within a second of an outage.
RETRY_BACKOFF_S = (10, 600)
# A valid completion is only nacked while the state store is down. 20 attempts with the backoff above span
# about two hours of outage before Pub/Sub itself dead-letters it (5 would span five minutes).
COMPLETION_DELIVERY_ATTEMPTS = 20


@dataclass
class Provisioned:
    """What `provision_pubsub` found: names created now and names that existed already."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


class PubSubAdmin:
    def __init__(self, project: str, session: aiohttp.ClientSession, api_root: str | None = None) -> None:
        self._project = project
        self._publisher = publisher_client(session, api_root)
        self._subscriber = subscriber_client(session, api_root)

    async def ensure_topic(self, name: str) -> bool:
        """Create the topic unless it exists. True when this call created it."""
        try:
            await self._publisher.create_topic(topic_path(self._project, name))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if status_of(exc) == 409:
                return False
            raise _translate(f"create topic {name}", exc) from exc
        return True

    async def ensure_subscription(
        self,
        name: str,
        topic: str,
        ack_deadline_s: int = 10,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        ordered: bool = False,
        retry_backoff_s: tuple[int, int] | None = None,
    ) -> bool:
        """Create a pull subscription on `topic` unless it exists. True when this call created it.

        `retry_backoff_s=(minimum, maximum)` makes the service wait between redeliveries of a nacked message,
        so `max_delivery_attempts` spans an outage instead of a second."""
        body: dict[str, Any] = {"ackDeadlineSeconds": ack_deadline_s, "enableMessageOrdering": ordered}
        if retry_backoff_s is not None:
            low, high = retry_backoff_s
            body["retryPolicy"] = {"minimumBackoff": f"{low}s", "maximumBackoff": f"{high}s"}
        if dead_letter_topic is not None:
            body["deadLetterPolicy"] = {
                "deadLetterTopic": topic_path(self._project, dead_letter_topic),
                "maxDeliveryAttempts": max_delivery_attempts,
            }
        path = subscription_path(self._project, name)
        try:
            await self._subscriber.create_subscription(path, topic_path(self._project, topic), body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if status_of(exc) != 409:
                raise _translate(f"create subscription {name}", exc) from exc
        else:
            return True
        await self._check_topic(name, path, topic)
        return False

    async def missing(self, policy: Policy, subscription_prefix: str = "cascade-") -> list[str]:
        """What `cascade run` needs and does not exist (or is attached to another topic); empty when ready."""
        topics = {spec.publishes_to for spec in policy.transitions.values()}
        names = sorted(topics | set(policy_topics(policy)))
        existing = set(await self._topic_names())
        problems = [f"topic {name}" for name in names if name not in existing]
        for subscription, topic in completion_subscriptions(policy, subscription_prefix).items():
            path = subscription_path(self._project, subscription)
            try:
                found = await self._subscriber.get_subscription(path)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if status_of(exc) == 404:
                    problems.append(f"subscription {subscription}")
                    continue
                raise _translate(f"read subscription {subscription}", exc) from exc
            if found.get("topic") != topic_path(self._project, topic):
                problems.append(
                    f"subscription {subscription} (attached to {found.get('topic')}, not {topic})"
                )
        return problems

    async def _topic_names(self) -> list[str]:
        names: list[str] = []
        params = {"pageSize": "1000"}
        while True:
            try:
                page = await self._publisher.list_topics(f"projects/{self._project}", params)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise _translate("list topics", exc) from exc
            names += [str(t.get("name", "")).rsplit("/", 1)[-1] for t in page.get("topics", [])]
            if not page.get("nextPageToken"):
                return names
            params = {"pageSize": "1000", "pageToken": str(page["nextPageToken"])}

    async def _check_topic(self, name: str, path: str, topic: str) -> None:
        try:
            existing = await self._subscriber.get_subscription(path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _translate(f"read subscription {name}", exc) from exc
        if existing.get("topic") != topic_path(self._project, topic):
            raise ConfigurationError(
                f"subscription {name} exists on {existing.get('topic')}, not on topic {topic}"
            )


def _translate(what: str, exc: BaseException) -> Exception:
    if is_retryable(exc):
        return TransientError(f"{what}: {describe(exc)}")
    return ConfigurationError(f"{what} refused: {describe(exc)}")


class Admin(Protocol):
    """What provisioning needs; `PubSubAdmin` and `adapters.memory_pubsub.MemoryBroker` both provide it."""

    async def ensure_topic(self, name: str) -> bool: ...

    async def ensure_subscription(
        self,
        name: str,
        topic: str,
        ack_deadline_s: int = 10,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        ordered: bool = False,
        retry_backoff_s: tuple[int, int] | None = None,
    ) -> bool: ...


async def provision(
    admin: Admin,
    policy: Policy,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    extra_topics: Sequence[str] = STATUS_TOPICS,
    subscription_prefix: str = "cascade-",
    ack_deadline_s: int = 10,
    max_delivery_attempts: int = COMPLETION_DELIVERY_ATTEMPTS,
    retry_backoff_s: tuple[int, int] = RETRY_BACKOFF_S,
) -> Provisioned:
    """Create, for every transition, its completion topic and subscription `{prefix}{listens_to}` (with the
    dead-letter policy) and its trigger topic; the dead-letter topic with an audit subscription
    `{dead_letter_topic}-audit` so dead letters are retained; and `extra_topics`. Safe to run again."""
    result = Provisioned()

    def note(name: str, created: bool) -> None:
        (result.created if created else result.existing).append(name)
        log.info("%s %s", "created" if created else "exists", name)

    topics = [dead_letter_topic, *extra_topics]
    for spec in policy.transitions.values():
        topics += [spec.listens_to, spec.publishes_to]
    for topic in dict.fromkeys(topics):
        note(f"topic {topic}", await admin.ensure_topic(topic))
    for subscription, topic in completion_subscriptions(policy, subscription_prefix).items():
        created = await admin.ensure_subscription(
            subscription,
            topic,
            ack_deadline_s,
            dead_letter_topic,
            max_delivery_attempts,
            False,
            retry_backoff_s,
        )
        note(f"subscription {subscription}", created)
    audit = f"{dead_letter_topic}-audit"
    note(f"subscription {audit}", await admin.ensure_subscription(audit, dead_letter_topic, ack_deadline_s))
    return result


async def provision_pubsub(
    project: str,
    policy: Policy,
    dead_letter_topic: str = DEAD_LETTER_TOPIC,
    extra_topics: Sequence[str] = STATUS_TOPICS,
    subscription_prefix: str = "cascade-",
    session: aiohttp.ClientSession | None = None,
    api_root: str | None = None,
) -> Provisioned:
    """`provision` on Google Pub/Sub (or the emulator at `api_root`)."""
    async with http_session(session) as http:
        admin = PubSubAdmin(project, http, api_root)
        return await provision(admin, policy, dead_letter_topic, extra_topics, subscription_prefix)


def policy_topics(policy: Policy) -> list[str]:
    """Every topic the policy listens to or publishes to."""
    return [name for spec in policy.transitions.values() for name in (spec.listens_to, spec.publishes_to)]


def completion_subscriptions(policy: Policy, subscription_prefix: str = "cascade-") -> dict[str, str]:
    """The `subscription → topic` map `PubSubSource` consumes, named as `provision_pubsub` creates them."""
    return {
        f"{subscription_prefix}{spec.listens_to}": spec.listens_to for spec in policy.transitions.values()
    }
