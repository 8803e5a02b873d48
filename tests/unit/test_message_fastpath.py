"""The msgspec fast path and the pydantic model decide every message alike.

Whatever the fast path accepts, pydantic accepts with the same values (including the order of the counts);
what the fast path cannot vouch for it hands on (None), and pydantic accepts or rejects it with its own text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from router import message_fastpath
from router.messages import Completion, CompletionMessage

VALID: dict[str, Any] = {
    "processor_name": "NbacGamebookProcessor",
    "phase": "phase_2_raw",
    "game_date": "2025-12-30",
    "status": "success",
    "timestamp": "2025-12-31T06:12:10Z",
    "execution_id": "ex-1",
    "correlation_id": "c-1",
    "output_table": "nba_raw.nbac_gamebook",
    "output_dataset": "nba_raw",
    "record_count": 1395,
    "records_failed": 0,
    "duration_seconds": 89.2,
    "trigger_source": "pubsub",
    "metadata": {"games_expected": 3, "games_processed": 3},
}


def _pydantic(text: str) -> Completion | None:
    try:
        return CompletionMessage.model_validate_json(text).completion()
    except ValidationError:
        return None


def _same_answer(text: str) -> Completion | None:
    fast = message_fastpath.decode(text)
    if fast is not None:
        slow = _pydantic(text)
        assert slow is not None, f"fast path accepted what pydantic rejects: {text[:200]}"
        assert fast == slow
        assert list(fast.counts.items()) == list(slow.counts.items())
        assert fast.timestamp.tzinfo is slow.timestamp.tzinfo
    return fast


def _with(**changes: Any) -> str:
    body = {**VALID, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not _DROP})


_DROP = object()


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_well_formed_message_takes_the_fast_path_with_the_values_pydantic_reads() -> None:
    assert _same_answer(json.dumps(VALID)) is not None


@pytest.mark.parametrize(
    "text",
    [
        _with(timestamp="2025-12-31T06:12:10"),  # naive: read as UTC
        _with(timestamp="2025-12-31T06:12:10.5+05:30"),
        _with(timestamp="2025-12-31T06:12:10.123456-00:00"),
        _with(metadata={"completion_pct": 97, "completed_predictions": 450, "extra_count": 7, "flag": True}),
        _with(metadata={"games_processed": 2, "other": 1, "games_expected": 3}),  # counts in pydantic's order
        _with(metadata={}, processing_mode="backfill", backfill_mode=True, skip_downstream_trigger=True),
        _with(record_count=None, output_table=None, metadata=_DROP, unknown={"nested": [1, 2, {"x": None}]}),
        _with(record_count=18446744073709551616),  # beyond 64 bits: both keep the int
        _with(processor_name="Proc\u00e9ssor\U0001f600"),
    ],
)
def test_accepted_variants_decode_alike(text: str) -> None:
    assert _same_answer(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        _with(timestamp="2025-12-31T06:12:10.1234567Z"),  # msgspec rounds a 7th digit, pydantic truncates it
        _with(timestamp="2025-12-31T06:12:10+00:60"),  # fromisoformat takes it, pydantic does not
        _with(timestamp="2025-12-31 06:12:10Z"),
        _with(timestamp="2025-12-31T06:12Z"),
        _with(timestamp=1767161530),  # unix seconds: pydantic's to read
        _with(record_count="5"),  # lax coercions are pydantic's
        _with(record_count=5.0),
        _with(record_count=True),
        _with(backfill_mode="yes"),
        _with(metadata={"games_expected": 3.0}),
        _with(metadata={"completion_percentage": 50}),  # the alias
        _with(metadata={"completion_pct": True}),
        _with(unknown=_nested(300)),  # pydantic refuses nesting deeper than 200, msgspec does not
    ],
)
def test_messages_outside_the_fast_subset_are_left_to_pydantic(text: str) -> None:
    assert message_fastpath.decode(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[1, 2]",
        "null",
        _with(status="SUCCESS"),
        _with(game_date="2025-12-30T00:00:00"),
        _with(game_date="2025-02-30"),
        _with(processor_name=""),
        _with(record_count=-1),
        _with(metadata={"completion_pct": 100.5}),
        _with(metadata={"games_expected": -1}),
        _with(processing_mode="nightly"),
        _with(phase=_DROP),
        _with(timestamp="2025-12-31T24:00:00Z"),
        json.dumps(VALID) + " trailing",
        '{"status": "bogus", ' + json.dumps(VALID)[1:],  # a duplicate key: the last one counts in pydantic
    ],
)
def test_messages_pydantic_rejects_never_take_the_fast_path(text: str) -> None:
    assert message_fastpath.decode(text) is None


_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_count = st.one_of(st.integers(min_value=0, max_value=10_000), st.none(), _scalar)
_fields = {
    "processor_name": st.one_of(st.text(min_size=1, max_size=8), _scalar),
    "phase": st.one_of(st.just("phase_2_raw"), _scalar),
    "game_date": st.one_of(st.from_regex(r"\d{4}-[01]\d-[0-3]\d", fullmatch=True), _scalar),
    "status": st.one_of(st.sampled_from(["success", "partial", "no_data", "failed", "Success"]), _scalar),
    "timestamp": st.one_of(
        st.from_regex(
            r"20\d\d-[01]\d-[0-3]\d[T ][0-2]\d:[0-6]\d:[0-6]\d(\.\d{1,8})?(Z|[+-][0-2]\d:[0-6]\d)?",
            fullmatch=True,
        ),
        _scalar,
    ),
    "record_count": _count,
    "records_failed": _count,
    "duration_seconds": st.one_of(st.floats(allow_nan=False, allow_infinity=False), _scalar),
    "processing_mode": st.one_of(st.sampled_from(["overnight", "backfill", "manual", "daily"]), _scalar),
    "backfill_mode": st.one_of(st.booleans(), _scalar),
    "metadata": st.one_of(
        st.dictionaries(
            st.sampled_from(
                ["games_expected", "games_processed", "completion_pct", "completed_predictions", "x", "y"]
            ),
            st.one_of(
                st.integers(min_value=0, max_value=200), st.floats(min_value=0, max_value=100), _scalar
            ),
            max_size=5,
        ),
        _scalar,
    ),
}
_OPTIONAL = sorted(set(VALID) - {"processor_name", "phase", "game_date", "status", "timestamp"})


@settings(max_examples=1000, deadline=None)
@given(data=st.data(), drop=st.sets(st.sampled_from(_OPTIONAL), max_size=3))
def test_arbitrary_messages_get_the_same_answer_from_both_decoders(
    data: st.DataObject, drop: set[str]
) -> None:
    # A few fields changed at a time, so that many examples stay valid enough to reach the fast path.
    changed = data.draw(st.lists(st.sampled_from(sorted(_fields)), max_size=3, unique=True))
    changes = {name: data.draw(_fields[name], label=name) for name in changed}
    body = {k: v for k, v in {**VALID, **changes}.items() if k not in drop}
    _same_answer(json.dumps(body))


def test_shared_mode_hints_stay_bounded_whatever_trigger_sources_producers_invent() -> None:
    for n in range(200):
        decoded = _same_answer(_with(trigger_source=f"source-{n}"))
        assert decoded is not None and decoded.hints.trigger_source == f"source-{n}"
    assert len(message_fastpath._KNOWN_HINTS) <= message_fastpath._KNOWN_HINTS_LIMIT
