"""Idempotent Pub/Sub provisioning (`cascade provision`): every topic and subscription cascade needs.

Creating what exists already is fine (409). An existing subscription attached to a *different* topic is a
`ConfigurationError`: consuming it would silently read the wrong messages. Other settings of an existing
subscription (ack deadline, dead-letter policy) are left as they are, except its expiration policy.

Every subscription is created to never expire: Pub/Sub's default deletes a subscription after 31 days without
a pull, and the dead-letter audit subscription is idle by design (so are the completion subscriptions in an
off-season). An existing subscription that would expire is patched (`ensure_never_expires`); the emulator
refuses that update (HTTP 400), which provisioning reports instead of failing.

Dead-letter forwarding by the service (after `max_delivery_attempts` nacks) also needs IAM grants for the
Pub/Sub service agent (publisher on the dead-letter topic, subscriber on the subscription); that is outside
what this module does. The engine dead-letters malformed input itself, without the service.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from adapters.connection import connection_failure
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
from adapters.resource_names import DEFAULT_NAMES, ResourceNames
from policies.model import Policy

log = logging.getLogger("cascade.provision")

# In the REST API an expiration policy without a `ttl` means "never expires".
NEVER_EXPIRES: dict[str, Any] = {}
# A nacked completion (the store was down) is redelivered after 10 s, 20 s, ... up to 10 min: without a
# backoff the service redelivers at once and a valid message would be dead-lettered by the service after
# `max_delivery_attempts` nacks within a second of an outage.
RETRY_BACKOFF_S = (10, 600)
# A valid completion is only nacked while the state store is down. 20 attempts with the backoff above span
# about two hours of outage before Pub/Sub itself dead-letters it (5 would span five minutes).
COMPLETION_DELIVERY_ATTEMPTS = 20


@dataclass
class Provisioned:
    """What `provision_pubsub` found: names created now, names that existed already (`updated`: and were
    changed now to never expire; `not_updated`: may expire, the service refused the change; with why)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    not_updated: list[str] = field(default_factory=list)


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
        body: dict[str, Any] = {
            "ackDeadlineSeconds": ack_deadline_s,
            "enableMessageOrdering": ordered,
            "expirationPolicy": NEVER_EXPIRES,
        }
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

    async def ensure_never_expires(self, name: str) -> bool:
        """Patch an existing subscription that would expire when idle. True when this call changed it."""
        path = subscription_path(self._project, name)
        try:
            found = await self._subscriber.get_subscription(path)
            if found.get("expirationPolicy") == NEVER_EXPIRES:
                return False
            body = {"subscription": {"expirationPolicy": NEVER_EXPIRES}, "updateMask": "expirationPolicy"}
            await self._subscriber.patch_subscription(path, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _translate(f"update the expiration policy of subscription {name}", exc) from exc
        return True

    async def missing(self, policy: Policy, names: ResourceNames = DEFAULT_NAMES) -> list[str]:
        """What `cascade run` needs and does not exist (or is attached to another topic); empty when ready.

        Includes the dead-letter, alert and status topics: without the dead-letter topic every malformed
        message would be nacked and redelivered forever."""
        wanted = sorted({*policy_topics(policy), *names.own_topics})
        existing = set(await self._topic_names())
        problems = [f"topic {name}" for name in wanted if name not in existing]
        for subscription, topic in consumed_subscriptions(policy, names).items():
            problem = await self._subscription_problem(subscription, topic)
            if problem:
                problems.append(problem)
        return problems

    async def _subscription_problem(self, subscription: str, topic: str) -> str | None:
        path = subscription_path(self._project, subscription)
        try:
            found = await self._subscriber.get_subscription(path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if status_of(exc) == 404:
                return f"subscription {subscription}"
            raise _translate(f"read subscription {subscription}", exc) from exc
        if found.get("topic") != topic_path(self._project, topic):
            return f"subscription {subscription} (attached to {found.get('topic')}, not {topic})"
        return None

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
    if unreachable := connection_failure("Pub/Sub", exc):
        return TransientError(unreachable)
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

    async def ensure_never_expires(self, name: str) -> bool: ...


async def provision(
    admin: Admin,
    policy: Policy,
    names: ResourceNames = DEFAULT_NAMES,
    ack_deadline_s: int = 10,
    max_delivery_attempts: int = COMPLETION_DELIVERY_ATTEMPTS,
    retry_backoff_s: tuple[int, int] = RETRY_BACKOFF_S,
) -> Provisioned:
    """Create, for every transition, its completion topic and subscription `{prefix}{listens_to}` (with the
    dead-letter policy) and its trigger topic; the dead-letter topic with its audit subscription so dead
    letters are retained; and the alert and status topics. Safe to run again: what exists is kept (a
    subscription that would expire is changed to never expire)."""
    result = Provisioned()

    def note(name: str, created: bool) -> None:
        (result.created if created else result.existing).append(name)
        log.info("%s %s", "created" if created else "exists", name)

    for topic in dict.fromkeys([*names.own_topics, *policy_topics(policy)]):
        note(f"topic {topic}", await admin.ensure_topic(topic))
    kept: list[str] = []  # subscriptions that existed before: created ones never expire already
    for subscription, topic in completion_subscriptions(policy, names).items():
        created = await admin.ensure_subscription(
            subscription,
            topic,
            ack_deadline_s,
            names.dead_letter_topic,
            max_delivery_attempts,
            False,
            retry_backoff_s,
        )
        note(f"subscription {subscription}", created)
        if not created:
            kept.append(subscription)
    audit = names.dead_letter_audit_subscription
    created = await admin.ensure_subscription(audit, names.dead_letter_topic, ack_deadline_s)
    note(f"subscription {audit}", created)
    if not created:
        kept.append(audit)
    for subscription in kept:
        await _never_expires(admin, subscription, result)
    return result


async def _never_expires(admin: Admin, subscription: str, result: Provisioned) -> None:
    try:
        changed = await admin.ensure_never_expires(subscription)
    except ConfigurationError as exc:  # the emulator refuses every change of an expiration policy
        result.not_updated.append(f"subscription {subscription}: may expire when idle ({exc})")
        log.warning("subscription %s may expire when idle: %s", subscription, exc)
        return
    if changed:
        result.updated.append(f"subscription {subscription}")
        log.info("updated subscription %s: never expires", subscription)


async def provision_pubsub(
    project: str,
    policy: Policy,
    names: ResourceNames = DEFAULT_NAMES,
    session: aiohttp.ClientSession | None = None,
    api_root: str | None = None,
) -> Provisioned:
    """`provision` on Google Pub/Sub (or the emulator at `api_root`)."""
    async with http_session(session) as http:
        admin = PubSubAdmin(project, http, api_root)
        return await provision(admin, policy, names)


def policy_topics(policy: Policy) -> list[str]:
    """Every topic the policy listens to or publishes to."""
    return [name for spec in policy.transitions.values() for name in (spec.listens_to, spec.publishes_to)]


def completion_subscriptions(policy: Policy, names: ResourceNames = DEFAULT_NAMES) -> dict[str, str]:
    """The `subscription → topic` map `PubSubSource` consumes, named as `provision_pubsub` creates them."""
    prefix = names.subscription_prefix
    return {f"{prefix}{spec.listens_to}": spec.listens_to for spec in policy.transitions.values()}


def consumed_subscriptions(policy: Policy, names: ResourceNames = DEFAULT_NAMES) -> dict[str, str]:
    """Every subscription provisioning creates: the completion subscriptions and the dead-letter audit one."""
    return {
        **completion_subscriptions(policy, names),
        names.dead_letter_audit_subscription: names.dead_letter_topic,
    }
