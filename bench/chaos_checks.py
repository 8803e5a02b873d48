"""What a chaos trial checks once its daemons have stopped, from what the outside world can see.

1. one trigger id per (game_date, transition) among the messages on the trigger topics (the same id
   published again is counted as `republished`: allowed, consumers deduplicate by trigger id);
2. no expected (game_date, transition) without a trigger;
3. fan-out complete: as many distinct messages per date on a per_table topic as tables were published;
4. every accepted completion recorded: each published message id (duplicates included: each is its own
   Pub/Sub message, and the router records it) has its completion document in Firestore;
5. no audit row lost: each published message has its `input` row and each trigger message seen its
   `trigger` row, in BigQuery (deduplicated by insert_id) or in an instance's spool file.

The audit is read after every daemon stopped with SIGTERM: by then each has flushed its buffer to BigQuery
or spooled it, so BigQuery plus the spools hold everything that was not lost. Resending a spool (a restart)
would only move rows from one place to the other.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from adapters.bigquery_history import BigQueryHistory
from adapters.bigquery_schema import ORCHESTRATION_EVENTS
from adapters.firestore_store import FirestoreStateStore, firestore_client
from adapters.source import Received
from bench.chaos_day import Completion, Day
from policies.model import Policy
from router.keys import Key

TriggerIdentity = tuple[str, str, str | None]  # topic, trigger id, source_table (per_table fan-out)


@dataclass(frozen=True, slots=True)
class Published:
    completion: Completion
    message_id: str
    at: str = ""  # when it was published (wall clock, ISO): to read a failed trial against the logs


@dataclass
class Counts:
    """A trial's (or a run's) outcome; every field but the first four and `republished` must be 0."""

    trials: int = 0
    dates: int = 0
    transitions: int = 0
    messages: int = 0
    conflicting: int = 0
    missing: int = 0
    incomplete_fanouts: int = 0
    lost_completions: int = 0
    lost_audit_rows: int = 0
    unexpected_exits: int = 0
    republished: int = 0
    # Instances that routed in the Firestore-outage mode (README, "When Firestore is down"): not a failure.
    store_outages: int = 0
    details: list[str] = field(default_factory=list)

    MUST_BE_ZERO = (
        "conflicting",
        "missing",
        "incomplete_fanouts",
        "lost_completions",
        "lost_audit_rows",
        "unexpected_exits",
    )

    @property
    def ok(self) -> bool:
        return all(getattr(self, name) == 0 for name in self.MUST_BE_ZERO)

    def add(self, other: Counts) -> None:
        informational = ("trials", "dates", "transitions", "messages", "republished", "store_outages")
        for name in (*informational, *self.MUST_BE_ZERO):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def transitions_by_topic(policy: Policy) -> dict[str, str]:
    """Completion topic -> the transition that listens to it."""
    return {spec.listens_to: name for name, spec in policy.transitions.items()}


def check_triggers(days: list[Day], policy: Policy, seen: Iterable[Received], counts: Counts) -> None:
    """Checks 1-3 on the trigger messages seen (each Pub/Sub message once, redeliveries removed)."""
    messages = {m.message_id: m for m in seen}.values()
    ids: dict[tuple[str, str], set[str]] = defaultdict(set)  # (game_date, transition) -> trigger ids
    per_identity: dict[TriggerIdentity, int] = defaultdict(int)
    for message in messages:
        attributes = message.attributes
        ids[(attributes["game_date"], attributes["transition"])].add(attributes["trigger_id"])
        per_identity[trigger_identity(message)] += 1
    counts.republished += sum(n - 1 for n in per_identity.values())
    for (game_date, transition), trigger_ids in sorted(ids.items()):
        if len(trigger_ids) > 1:
            counts.conflicting += 1
            counts.details.append(
                f"conflicting trigger ids for {game_date} {transition}: {sorted(trigger_ids)}"
            )
    for day in days:
        for name, spec in policy.transitions.items():
            counts.transitions += 1
            if not ids.get((day.game_date, name)):
                counts.missing += 1
                counts.details.append(f"missing trigger: {day.game_date} {name}")
                continue
            distinct = {
                i for i in per_identity if i[0] == spec.publishes_to and _date_of(i[1]) == day.game_date
            }
            if len(distinct) < day.expected[spec.publishes_to]:
                counts.incomplete_fanouts += 1
                counts.details.append(
                    f"incomplete fan-out: {day.game_date} {name}: {len(distinct)} of "
                    f"{day.expected[spec.publishes_to]} messages on {spec.publishes_to}"
                )


def trigger_identity(message: Received) -> TriggerIdentity:
    body = json.loads(message.data)
    return message.topic, message.attributes["trigger_id"], body.get("source_table")


def _date_of(trigger_id: str) -> str:
    # trg-YYYY-MM-DD-<transition>-<digest> (router.keys.Key.trigger_id)
    return trigger_id[4:14]


async def check_completions(
    project: str, collection: str, policy: Policy, published: list[Published], counts: Counts
) -> None:
    """Check 4: each published message id among its key's completion documents in Firestore."""
    for key, message_id in await unrecorded(project, collection, policy, published):
        counts.lost_completions += 1
        counts.details.append(f"completion not in Firestore: {key} message {message_id}")


async def unrecorded(
    project: str, collection: str, policy: Policy, published: list[Published]
) -> list[tuple[Key, str]]:
    """The published messages without their completion document in Firestore, by key."""
    by_topic = transitions_by_topic(policy)
    wanted: dict[Key, list[str]] = defaultdict(list)
    for item in published:
        key = Key(date.fromisoformat(item.completion.game_date), by_topic[item.completion.topic])
        wanted[key].append(item.message_id)
    missing = []
    client = firestore_client(project)
    try:
        store = FirestoreStateStore(client, collection)
        for key, message_ids in sorted(wanted.items()):
            recorded = {str(doc.get("message_id")) for doc in await store.completions(key)}
            missing += [(key, message_id) for message_id in message_ids if message_id not in recorded]
    finally:
        client.close()
    return missing


async def key_records(project: str, collection: str) -> list[dict[str, Any]]:
    """Each key's shared record as the daemons left it (claim, holder, lease, publish time; the inputs
    only counted): what a slow or failed trial is diagnosed from."""
    client = firestore_client(project)
    try:
        out = []
        async for snapshot in client.collection(collection).stream():
            document = snapshot.to_dict() or {}
            inputs = document.pop("inputs", {}) or {}
            document.pop("expire_at", None)
            out.append({"key": snapshot.id, **document, "inputs": len(inputs)})
        return out
    finally:
        client.close()


async def audit_rows(
    project: str, dataset: str, api_root: str | None, spools: list[Path], first: date, last: date
) -> tuple[list[Mapping[str, Any]], int]:
    """Every audit row in BigQuery (deduplicated by insert_id) and in the spools; and how many of the
    spools' rows BigQuery had refused (`.rejected` files: not stored, so not counted as present)."""
    history = BigQueryHistory(project, dataset, api_root=api_root)
    try:
        rows: list[Mapping[str, Any]] = list(await history.rows(first, last))
    finally:
        await history.close()
    rejected = 0
    for spool in spools:
        for entry in _lines(spool):
            if entry.get("table") == ORCHESTRATION_EVENTS.name:
                rows.append(json.loads(entry["row"]["payload"]))
        rejected += len(_lines(spool.with_name(spool.name + ".rejected")))
    return rows, rejected


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_audit(
    published: list[Published], seen: Iterable[Received], rows: list[Mapping[str, Any]], counts: Counts
) -> None:
    """Check 5: an `input` row per published message, a `trigger` row per trigger message seen."""
    inputs = {str(r.get("message_id")) for r in rows if r.get("kind") == "input"}
    triggers = {
        (str(r.get("topic")), str(r.get("trigger_id")), (r.get("payload") or {}).get("source_table"))
        for r in rows
        if r.get("kind") == "trigger"
    }
    for item in published:
        if item.message_id not in inputs:
            counts.lost_audit_rows += 1
            c = item.completion
            counts.details.append(f"lost audit row: input {c.game_date} {c.topic} message {item.message_id}")
    for identity in sorted({trigger_identity(m) for m in seen}, key=str):
        if identity not in triggers:
            counts.lost_audit_rows += 1
            counts.details.append(
                f"lost audit row: trigger {identity[1]} on {identity[0]} {identity[2] or ''}"
            )
