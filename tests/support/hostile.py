"""Hostile message bodies for intake (`router.intake.accept`): the fuzz test and `bench.fuzz_intake` share them.

Every kind of wrong a publisher (or an attacker with publish rights) can put on a completion topic: arbitrary
bytes, JSON of every shape, completion messages with one field made hostile (unicode names, impossible dates,
huge or non-finite numbers, timestamps at the edges of the calendar), numbers with thousands of digits,
nesting far deeper than any parser's limit, and bodies over the size limit.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from router.intake import MAX_MESSAGE_BYTES

COMPLETION_TOPICS = (
    *("nba-phase2-raw-complete", "nba-phase3-analytics-complete"),
    *("nba-phase4-precompute-complete", "nba-phase5-predictions-complete"),
)
# Mostly the topics a message is routed from (a body on an unknown topic is rejected before it is read).
TOPICS = st.one_of(
    st.sampled_from(COMPLETION_TOPICS), st.sampled_from(COMPLETION_TOPICS), st.text(max_size=40)
)

# Text with everything in it: surrogates (JSON-escaped by `json.dumps`), controls, astral planes.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**80),
    st.integers(max_value=-1),
    st.floats(allow_nan=True, allow_infinity=True),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _NUMBERS, _TEXT)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(_TEXT, inner, max_size=6),
    max_leaves=30,
)

_DATES = st.one_of(
    st.sampled_from(["2025-12-30", "2025-02-30", "2025-13-01", "0000-01-01", "0001-01-01", "9999-12-31"]),
    st.sampled_from(["10000-01-01", "2025-12-30T00:00:00", "-2025-12-30", "2025-1-3", "", "20251230"]),
    st.dates().map(lambda d: d.isoformat()),
    _TEXT,
    _NUMBERS,
)
_OFFSET = timedelta(hours=23, minutes=59)
_TIMESTAMPS = st.one_of(
    st.sampled_from(["2025-12-31T06:00:00Z", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]),
    st.sampled_from(["2025-12-31T24:00:00Z", "2025-12-31T06:00:00+00:60", "2025-12-31T06:00:00.1234567Z"]),
    # Any instant with any offset: hypothesis favours the calendar's edges (year 1, year 9999).
    st.datetimes(timezones=st.builds(timezone, st.timedeltas(-_OFFSET, _OFFSET))).map(
        lambda d: d.isoformat()
    ),
    _TEXT,
    _NUMBERS,
)


def valid_message() -> dict[str, Any]:
    return {
        "processor_name": "NbacGamebookProcessor",
        "phase": "phase_2_raw",
        "game_date": "2025-12-30",
        "status": "success",
        "timestamp": "2025-12-31T06:00:00Z",
        "record_count": 120,
        "metadata": {"games_expected": 8, "games_processed": 8},
    }


_FIELD_VALUES = {
    "processor_name": st.one_of(_TEXT, JSON_VALUES),
    "phase": st.one_of(st.sampled_from(["phase_2_raw", "phase_3_analytics"]), _TEXT),
    "game_date": _DATES,
    "status": st.one_of(st.sampled_from(["success", "partial", "failed", "SUCCESS"]), JSON_VALUES),
    "timestamp": _TIMESTAMPS,
    "record_count": st.one_of(_NUMBERS, JSON_VALUES),
    "duration_seconds": _NUMBERS,
    "processing_mode": st.one_of(st.sampled_from(["overnight", "same_day", "backfill"]), _TEXT),
    "metadata": st.one_of(
        st.fixed_dictionaries({"completion_pct": _NUMBERS}),
        st.fixed_dictionaries({"games_expected": _NUMBERS, "games_processed": _NUMBERS}),
        st.fixed_dictionaries({"completion_percentage": _NUMBERS, "completion_pct": _NUMBERS}),
        JSON_VALUES,
    ),
    "extra": JSON_VALUES,
}


@st.composite
def _hostile_messages(draw: st.DrawFn) -> bytes:
    """A completion message with some fields hostile, some missing."""
    body: dict[str, Any] = valid_message()
    for name in draw(st.sets(st.sampled_from(sorted(_FIELD_VALUES)), min_size=1, max_size=3)):
        body[name] = draw(_FIELD_VALUES[name])
    for name in draw(st.sets(st.sampled_from(sorted(body)), max_size=2)):
        del body[name]
    return json.dumps(body, allow_nan=True).encode()


@st.composite
def _one_field_hostile(draw: st.DrawFn) -> bytes:
    """A valid completion message but for one field: what reaches the validators of that field."""
    name = draw(st.sampled_from(sorted(_FIELD_VALUES)))
    return json.dumps({**valid_message(), name: draw(_FIELD_VALUES[name])}, allow_nan=True).encode()


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    # A valid message with the nesting inside an unknown metadata field (the fast path must not take it).
    message = json.dumps(valid_message()).encode()
    return message[:-2] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}}"


_DEEP = st.builds(
    _nested,
    st.one_of(st.integers(1, 300), st.integers(300, 100_000), st.just(100_000)),
    st.sampled_from(["list", "object", "inside"]),
)


def huge_number(digits: int, where: str) -> bytes:
    number = "9" * digits
    if where == "exponent":
        number = f"1e{number}"
    body = json.dumps(valid_message())
    return body.replace('"record_count": 120', f'"record_count": {number}').encode()


_HUGE_NUMBERS = st.builds(huge_number, st.integers(19, 20_000), st.sampled_from(["digits", "exponent"]))
_OVERSIZE = st.builds(lambda extra: b"{" + b" " * (MAX_MESSAGE_BYTES + extra) + b"}", st.integers(0, 1 << 20))
_NON_FINITE = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b'{"metadata": NaN}']).map(
    lambda token: json.dumps(valid_message()).encode().replace(b"120", token)
)

BODIES = st.one_of(
    st.binary(max_size=512),
    JSON_VALUES.map(lambda value: json.dumps(value, allow_nan=True).encode()),
    _hostile_messages(),
    _one_field_hostile(),
    _DEEP,
    _HUGE_NUMBERS,
    _NON_FINITE,
    _OVERSIZE,
    _TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),  # invalid UTF-8 (lone surrogates)
)
