"""Intake under hostile input: every body is accepted or rejected with a category and a reason, never raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from policies.model import Policy
from router.intake import MAX_MESSAGE_BYTES, Accepted, Rejected, Rejection, accept
from tests.support.builders import default_policy
from tests.support.hostile import BODIES, TOPICS, huge_number, valid_message

POLICY = default_policy()  # a session fixture cannot reach @given; the policy is immutable


def _with(**fields: object) -> bytes:
    return json.dumps({**valid_message(), **fields}, allow_nan=True).encode()


@pytest.mark.parametrize(
    ("topic", "body", "category"),
    [
        ("nba-phase2-raw-complete", b"{garbled", Rejection.NOT_JSON),
        ("nba-phase2-raw-complete", b"\xff\xfe", Rejection.NOT_JSON),
        ("nba-phase2-raw-complete", b"[" * 100_000 + b"]" * 100_000, Rejection.NOT_JSON),
        ("nba-phase2-raw-complete", huge_number(5000, "digits"), Rejection.NOT_JSON),
        ("nba-phase2-raw-complete", b"[1, 2]", Rejection.SCHEMA),
        ("nba-phase2-raw-complete", b'{"processor_name": "x"}', Rejection.SCHEMA),
        ("nba-phase2-raw-complete", _with(game_date="2025-02-30"), Rejection.SCHEMA),
        ("nba-phase2-raw-complete", _with(game_date="0000-01-01"), Rejection.SCHEMA),
        ("nba-phase2-raw-complete", _with(metadata={"completion_pct": float("nan")}), Rejection.SCHEMA),
        ("no-such-topic", b"{}", Rejection.UNKNOWN_TOPIC),
        ("nba-phase2-raw-complete", _with(phase="phase_9_nonsense"), Rejection.WRONG_PHASE),
        ("nba-phase2-raw-complete", b"{" + b" " * MAX_MESSAGE_BYTES + b"}", Rejection.TOO_LARGE),
    ],
    ids=[
        "garbled",
        "invalid-utf8",
        "nested-100k",
        "5000-digit-int",
        "array",
        "fields-missing",
        "feb-30",
        "year-0",
        "nan-pct",
        "unknown-topic",
        "wrong-phase",
        "over-size-limit",
    ],
)
def test_each_rejection_carries_the_category_decided_where_it_was_rejected(
    policy: Policy, topic: str, body: bytes, category: Rejection
) -> None:
    rejected = accept(topic, "m-1", body, policy)
    assert isinstance(rejected, Rejected)
    assert (rejected.category, bool(rejected.reason)) == (category, True)


@pytest.mark.parametrize(
    "timestamp",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"],
    ids=["before-year-1", "after-9999"],
)
def test_a_timestamp_outside_the_calendar_once_in_utc_is_rejected_not_raised(
    policy: Policy, timestamp: str
) -> None:
    # Was: OverflowError out of the pydantic validator, a traceback and a nack on every redelivery.
    rejected = accept("nba-phase2-raw-complete", "m-1", _with(timestamp=timestamp), policy)
    assert isinstance(rejected, Rejected)
    assert rejected.category is Rejection.SCHEMA
    assert "out of range once converted to UTC" in rejected.reason


def check(topic: str, body: bytes) -> Accepted | Rejected:
    """The fuzz invariant: never raises; a rejection names a category and a reason; what is accepted is a
    completion of the topic's transition, recorded exactly as delivered."""
    outcome = accept(topic, "m-1", body, POLICY)
    if isinstance(outcome, Rejected):
        assert outcome.category in Rejection
        assert outcome.reason
        return outcome
    assert outcome.key.transition == POLICY.transition_for_topic(topic)
    assert outcome.event.original == body.decode("utf-8")
    assert outcome.event.report.processor.encode("utf-8")  # no lone surrogate reaches the store
    return outcome


@settings(
    max_examples=500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(topic=TOPICS, body=BODIES)
def test_intake_never_raises_on_hostile_input_and_rejects_with_a_reason(topic: str, body: bytes) -> None:
    check(topic, body)
