"""What a chaos trial publishes: the recorded overnight day, moved to several game dates, with duplicates and
in a shuffled order.

Every body states `processing_mode: overnight`. Without it the mode would come from the game date relative
to today (only yesterday is overnight; older dates are backfill, which records and never cascades), so a
trial could use one date only. Stated, each date runs the overnight rules; the harness's policy moves the
overnight deadlines a month ahead so that no fallback fires during a trial (the daemons run on the wall
clock). Timestamps are "now", so no input is stale.

A duplicate is the same body published again: Pub/Sub gives it a new message id, so the router sees two
messages from one processor run (the newest report wins, nothing counts twice). Redeliveries of one message
id happen by themselves when an instance is killed with messages in hand.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ops.replay import read_recording
from policies.model import Policy

DAY = Path(__file__).resolve().parents[1] / "examples" / "overnight_full_cascade.jsonl"
PER_TABLE = "per_table"  # the payload kind that fans out: one trigger message per completed upstream table


@dataclass(frozen=True, slots=True)
class Completion:
    """One message to publish: its topic, body, game date, and whether it repeats an earlier body."""

    topic: str
    data: bytes
    game_date: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Day:
    """One game date's completions, and how many trigger messages each trigger topic must carry for it."""

    game_date: str
    completions: list[Completion]
    expected: dict[str, int]  # trigger topic -> messages (a per_table fan-out: one per upstream table)


# The daemon keeps and rebuilds (after a restart) only the keys of the last `recent_days` (3) UTC days.
RECENT_DAYS = 3


def game_dates(count: int, rng: random.Random, today_utc: date) -> list[str]:
    """`count` distinct dates of the last RECENT_DAYS days (the mode is stated, so their age does not
    decide it)."""
    offsets = rng.sample(range(1, RECENT_DAYS + 1), count)
    return [(today_utc - timedelta(days=offset)).isoformat() for offset in sorted(offsets)]


def recorded_day(game_date: str, policy: Policy) -> Day:
    with DAY.open() as lines:
        deliveries = read_recording(lines, str(DAY))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    completions = []
    for delivery in deliveries:
        assert isinstance(delivery.data, dict), f"{DAY}: every line of the recorded day is a JSON body"
        body = {**delivery.data, "game_date": game_date, "timestamp": stamp, "processing_mode": "overnight"}
        completions.append(Completion(delivery.topic, json.dumps(body).encode(), game_date, False))
    return Day(game_date, completions, expected_triggers(completions, policy))


def expected_triggers(completions: list[Completion], policy: Policy) -> dict[str, int]:
    """Per trigger topic: 1 message, or for a per_table payload one per distinct table published upstream."""
    tables = Counter(
        c.topic for c in {(c.topic, json.loads(c.data).get("output_table")): c for c in completions}.values()
    )
    expected = {}
    for spec in policy.transitions.values():
        expected[spec.publishes_to] = tables[spec.listens_to] if spec.payload == PER_TABLE else 1
    return expected


def with_duplicates_shuffled(days: list[Day], rng: random.Random, duplicates: int) -> list[Completion]:
    """Every completion of every day once, plus `duplicates` repeats of random ones, in a random order."""
    originals = [c for day in days for c in day.completions]
    repeats = [
        Completion(c.topic, c.data, c.game_date, True)
        for c in (rng.choice(originals) for _ in range(duplicates))
    ]
    out = originals + repeats
    rng.shuffle(out)
    return out
