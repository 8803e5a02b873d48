"""The chaos suite's checks (`bench.chaos_checks`) find what they are there to find: a checker that always
said 0 would make every chaos run look green."""

from __future__ import annotations

import json
import random
from datetime import date

from adapters.source import Received
from bench.chaos_checks import Counts, Published, check_audit, check_triggers
from bench.chaos_day import recorded_day, with_duplicates_shuffled
from policies.model import Policy
from router.keys import Key

GAME_DATE = "2026-11-29"
TABLES = ["t1", "t2", "t3", "t4", "t5"]


def trigger_messages(policy: Policy, game_date: str = GAME_DATE) -> list[Received]:
    """What the trigger topics carry for one fully routed date: one message each, five on phase 4."""
    out = []
    for name, spec in policy.transitions.items():
        trigger_id = Key(date.fromisoformat(game_date), name).trigger_id
        bodies = [{"source_table": t} for t in TABLES] if spec.payload == "per_table" else [{}]
        for body in bodies:
            out.append(message(spec.publishes_to, trigger_id, game_date, name, body))
    return out


def message(topic: str, trigger_id: str, game_date: str, transition: str, body: dict[str, str]) -> Received:
    attributes = {"trigger_id": trigger_id, "game_date": game_date, "transition": transition}
    message_id = f"{trigger_id}/{body.get('source_table', '')}"
    return Received(topic, "watch", message_id, json.dumps(body).encode(), attributes)


def checked(policy: Policy, seen: list[Received]) -> Counts:
    counts = Counts()
    check_triggers([recorded_day(GAME_DATE, policy)], policy, seen, counts)
    return counts


def test_a_fully_routed_date_passes_and_a_redelivery_is_not_a_republish(policy: Policy) -> None:
    seen = trigger_messages(policy)
    counts = checked(policy, [*seen, seen[0]])  # the same Pub/Sub message delivered twice
    assert counts.ok and counts.republished == 0 and counts.transitions == 4, counts.details


def test_the_same_trigger_published_again_is_counted_as_republished_not_as_a_failure(policy: Policy) -> None:
    seen = trigger_messages(policy)
    again = Received(seen[0].topic, "watch", "another-id", seen[0].data, seen[0].attributes)
    counts = checked(policy, [*seen, again])
    assert counts.ok and counts.republished == 1


def test_a_second_trigger_id_for_one_key_is_a_conflict(policy: Policy) -> None:
    seen = trigger_messages(policy)
    first = seen[0]
    other = message(first.topic, "trg-2026-11-29-other", GAME_DATE, first.attributes["transition"], {})
    assert checked(policy, [*seen, other]).conflicting == 1


def test_a_transition_without_a_trigger_is_missing(policy: Policy) -> None:
    seen = [m for m in trigger_messages(policy) if m.attributes["transition"] != "phase5_to_phase6"]
    counts = checked(policy, seen)
    assert counts.missing == 1 and counts.details == [f"missing trigger: {GAME_DATE} phase5_to_phase6"]


def test_a_phase4_fan_out_short_of_one_table_is_incomplete(policy: Policy) -> None:
    seen = [m for m in trigger_messages(policy) if b'"t3"' not in m.data]
    counts = checked(policy, seen)
    assert counts.incomplete_fanouts == 1 and counts.missing == 0, counts.details


def test_the_recorded_day_expects_the_policy_fan_out_and_duplicates_repeat_originals(policy: Policy) -> None:
    day = recorded_day(GAME_DATE, policy)
    assert sorted(day.expected.values()) == [1, 1, 1, 5]
    shuffled = with_duplicates_shuffled([day], random.Random(3), 4)
    assert len(shuffled) == len(day.completions) + 4
    assert {c.data for c in shuffled if c.duplicate} <= {c.data for c in day.completions}


def test_an_input_or_a_trigger_without_its_audit_row_is_a_lost_row(policy: Policy) -> None:
    day = recorded_day(GAME_DATE, policy)
    published = [Published(c, f"m{i}") for i, c in enumerate(day.completions)]
    seen = trigger_messages(policy)
    rows: list[dict[str, object]] = [{"kind": "input", "message_id": p.message_id} for p in published[1:]]
    for m in seen[1:]:
        body = json.loads(m.data)
        rows.append(
            {"kind": "trigger", "topic": m.topic, "trigger_id": m.attributes["trigger_id"], "payload": body}
        )
    counts = Counts()
    check_audit(published, seen, rows, counts)
    assert counts.lost_audit_rows == 2, counts.details
    assert any("message m0" in d for d in counts.details)
    assert any(seen[0].attributes["trigger_id"] in d for d in counts.details)
