"""The load of `bench.router_cost`: synthetic completion messages published at a fixed rate, and the
subscriber that notes when each trigger (or relayed copy) comes back.

The messages are `bench.synthetic`'s nightly cascade (16 completions per game date, plus its redeliveries,
out-of-order reports, dates missing a critical input and malformed messages), moved so a live router
cascades them:
- game dates are shifted to consecutive days starting two days from today (ET), and every body states
  `processing_mode: overnight`: a stated mode is pinned like a detected one (no extra store call when it
  equals the pinned mode), and future dates keep the fallback and self-heal deadlines out of the run, so
  only messages decide; `cascade publish --relive` cannot do that for more than one date;
- `timestamp` is the moment the message is published (a redelivery repeats the first copy's), so no input is
  stale;
- malformed deliveries to a topic that does not exist are dropped (a real publisher would get a 404).

Each message carries one more attribute, `bench_seq`, so the relay's copies can be matched with their input.
For every key (game date, transition) the synthetic plan says will trigger, the *completing* input is the
last-published first copy of a valid message for that key; trigger latency runs from the moment that
message's publish was sent to the moment the first trigger message for the key (or the relay's copy of that
message) is pulled by the watcher.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import anyio

from bench.synthetic import DEFAULT_SEED, DEFAULT_START, STAGES, generate_log
from ops.audit_rows import iso_z
from policies.model import Policy

Key = tuple[str, str]  # (game_date ISO, transition)
SEQ_ATTRIBUTE = "bench_seq"
PULL_TIMEOUT_S = 120  # above the emulator's ~90 s hold of an empty pull: never abandon one


@dataclass(frozen=True, slots=True)
class Planned:
    seq: int
    topic: str
    data: dict[str, Any] | str  # str: a raw (maybe garbled) body, published as is
    attributes: dict[str, str]
    message_id: str  # the recording's id: equal for a redelivery
    key: Key | None  # set on the first copy of a valid completion message


@dataclass
class Phase:
    """One stretch of load (the warm-up, or the measured run) and what it must cause."""

    messages: list[Planned]
    expected: set[Key]  # keys that must trigger
    completing: dict[Key, int]  # key -> seq of its completing input

    @property
    def events(self) -> int:
        return len(self.messages)


@dataclass(frozen=True, slots=True)
class Load:
    warmup: Phase
    measured: Phase
    dropped: int  # malformed deliveries to topics that do not exist
    first_date: date


def build_load(
    policy: Policy, dates: int, warmup_dates: int, first_date: date, seed: int = DEFAULT_SEED
) -> Load:
    log = generate_log(warmup_dates + dates, seed, DEFAULT_START)
    shift = first_date - DEFAULT_START
    transitions = {spec.listens_to: name for name, spec in policy.transitions.items()}
    stage_names = [stage.transition for stage in STAGES]
    cut = DEFAULT_START + timedelta(days=warmup_dates)
    phases = {True: Phase([], set(), {}), False: Phase([], set(), {})}
    for plan in log.plans:
        stop = stage_names.index(plan.broken_transition) if plan.broken_transition else len(stage_names)
        day = (plan.game_date + shift).isoformat()
        phases[plan.game_date < cut].expected.update((day, name) for name in stage_names[:stop])
    seen: set[str] = set()
    dropped = 0
    for record in log.records:
        if record["topic"] not in transitions:
            dropped += 1
            continue
        phase = phases[_original_date(record) < cut]
        seq = len(phases[True].messages) + len(phases[False].messages)
        data = _moved(record["data"], shift)
        key = None
        if (
            "-bad-" not in record["message_id"]
            and record["message_id"] not in seen
            and isinstance(data, dict)
        ):
            key = (data["game_date"], transitions[record["topic"]])
            phase.completing[key] = seq
        seen.add(record["message_id"])
        attributes = {**record["attributes"], SEQ_ATTRIBUTE: str(seq)}
        phase.messages.append(Planned(seq, record["topic"], data, attributes, record["message_id"], key))
    for phase in phases.values():
        phase.completing = {k: v for k, v in phase.completing.items() if k in phase.expected}
    return Load(phases[True], phases[False], dropped, first_date)


def _original_date(record: dict[str, Any]) -> date:
    # Every delivery of game date D is recorded on D+1 (synthetic.NIGHT_STARTS_AT, 06:00-09:00Z).
    return date.fromisoformat(record["at"][:10]) - timedelta(days=1)


def _moved(data: dict[str, Any] | str, shift: timedelta) -> dict[str, Any] | str:
    if not isinstance(data, dict):
        return data
    moved = {**data, "processing_mode": "overnight"}
    game_date = data.get("game_date")
    if isinstance(game_date, str) and len(game_date) == 10:
        moved["game_date"] = (date.fromisoformat(game_date) + shift).isoformat()
    return moved


# --- publishing at a fixed rate -------------------------------------------------------------------------


@dataclass
class Sent:
    at: dict[int, float] = field(default_factory=dict)  # seq -> when its publish was sent (monotonic)
    failed: int = 0
    max_late_s: float = 0.0


async def publish_at_rate(
    session: aiohttp.ClientSession, api_root: str, project: str, messages: Sequence[Planned], rate: float
) -> Sent:
    """Publish `messages` in order, message i at start + i/rate (absolute deadlines: a slow publish never
    shifts the rest), each in its own request, without waiting for the previous one to be answered."""
    sent = Sent()
    stamps: dict[str, str] = {}
    started = anyio.current_time()
    async with anyio.create_task_group() as tasks:
        for index, message in enumerate(messages):
            wait_s = started + index / rate - anyio.current_time()
            if wait_s > 0:
                await anyio.sleep(wait_s)
            else:
                sent.max_late_s = max(sent.max_late_s, -wait_s)
            body = _body(message, stamps)
            tasks.start_soon(_publish_one, session, api_root, project, message, body, sent)
    return sent


def _body(message: Planned, stamps: dict[str, str]) -> bytes:
    if isinstance(message.data, str):
        return message.data.encode()
    stamp = stamps.setdefault(message.message_id, iso_z(datetime.now(UTC)))
    return json.dumps({**message.data, "timestamp": stamp}).encode()


async def _publish_one(
    session: aiohttp.ClientSession, api_root: str, project: str, message: Planned, body: bytes, sent: Sent
) -> None:
    url = f"{api_root}/projects/{project}/topics/{message.topic}:publish"
    payload = {"messages": [{"data": base64.b64encode(body).decode(), "attributes": message.attributes}]}
    sent.at[message.seq] = anyio.current_time()
    try:
        async with session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=30)) as response:
            response.raise_for_status()
    except (aiohttp.ClientError, TimeoutError):
        sent.failed += 1


# --- watching the output topics -------------------------------------------------------------------------


@dataclass
class Arrival:
    at: float
    attributes: dict[str, str]


@dataclass
class Watcher:
    """Pulls the subscriptions on the output topics; remembers every message's arrival and attributes."""

    session: aiohttp.ClientSession
    api_root: str
    project: str
    arrivals: list[Arrival] = field(default_factory=list)

    async def run(self, subscriptions: Iterable[str]) -> None:
        async with anyio.create_task_group() as tasks:
            for subscription in subscriptions:
                tasks.start_soon(self._pull_loop, subscription)

    async def _pull_loop(self, subscription: str) -> None:
        url = f"{self.api_root}/projects/{self.project}/subscriptions/{subscription}"
        timeout = aiohttp.ClientTimeout(total=PULL_TIMEOUT_S)
        while True:
            try:
                async with self.session.post(f"{url}:pull", json={"maxMessages": 100}, timeout=timeout) as r:
                    r.raise_for_status()
                    answer = await r.json()
            except (aiohttp.ClientError, TimeoutError):
                await anyio.sleep(0.2)
                continue
            now = anyio.current_time()
            received = answer.get("receivedMessages") or []
            for item in received:
                self.arrivals.append(Arrival(now, dict(item["message"].get("attributes") or {})))
            if received:
                ack = {"ackIds": [item["ackId"] for item in received]}
                # A lost ack only brings a message back; its first arrival is what counts.
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with self.session.post(f"{url}:acknowledge", json=ack) as r:
                        r.raise_for_status()

    def first_by_key(self) -> dict[Key, float]:
        """When the first trigger message of each (game_date, transition) arrived (cascade's triggers)."""
        first: dict[Key, float] = {}
        for arrival in self.arrivals:
            a = arrival.attributes
            if "game_date" in a and "transition" in a:
                first.setdefault((a["game_date"], a["transition"]), arrival.at)
        return first

    def first_by_seq(self) -> dict[int, float]:
        """When the relayed copy of each input (by `bench_seq`) arrived (the relay's output)."""
        first: dict[int, float] = {}
        for arrival in self.arrivals:
            if SEQ_ATTRIBUTE in arrival.attributes:
                first.setdefault(int(arrival.attributes[SEQ_ATTRIBUTE]), arrival.at)
        return first
