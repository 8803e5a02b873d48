"""A fast decoder for the common, well-formed completion message; `None` for anything it cannot vouch for.

Most deliveries are well-formed, and pydantic's `model_validate_json` plus building the router's view of the
message cost about as much as the decision itself. msgspec decodes into a struct in one C pass. The fast path
accepts a strict subset of what `CompletionMessage` accepts, and for that subset yields the same values, so
the outcome never depends on which decoder ran: anything else (lax coercions such as "5" or 5.0 for an int,
other timestamp spellings, the `completion_percentage` alias, deep nesting, any error) returns `None`, and the
caller asks pydantic, which accepts or rejects it with its own error text.
`tests/unit/test_message_fastpath.py` holds the two to the same answers.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

import msgspec

from policies.model import Mode, Status
from policies.modes import ModeHints
from router.messages import Completion, as_utc

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Count = Annotated[int, msgspec.Meta(ge=0)]

# RFC 3339 as producers write it: at most 6 fractional digits (msgspec rounds a 7th, pydantic truncates),
# an offset with minutes 00-59 (datetime.fromisoformat would take "+00:60", pydantic does not).
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?"
)
# pydantic's JSON parser refuses nesting deeper than 200; msgspec goes deeper. Fewer brackets than this in
# the whole text (strings included) means no deeper nesting.
_MAX_BRACKETS = 128
_COUNTED_METADATA = ("games_expected", "games_processed", "completed_predictions")


class _Wire(msgspec.Struct, frozen=True):
    """`CompletionMessage`'s fields with the same constraints, strict types only. Unknown fields are skipped
    here (still parsed, so malformed JSON anywhere fails); the original text keeps them."""

    processor_name: _NonEmpty
    phase: _NonEmpty
    game_date: date
    status: Status
    timestamp: str  # parsed below, to keep within what both decoders read alike
    execution_id: str | None = None
    correlation_id: str | None = None
    output_table: str | None = None
    output_dataset: str | None = None
    record_count: _Count | None = None
    records_failed: _Count | None = None
    duration_seconds: float | None = None
    trigger_source: str | None = None
    processing_mode: Mode | None = None
    backfill_mode: bool = False
    skip_downstream_trigger: bool = False
    metadata: dict[str, Any] = {}


_DECODER = msgspec.json.Decoder(_Wire)


def decode(text: str) -> Completion | None:
    """The message, when it is in the subset decoded alike by both paths; else None (ask pydantic)."""
    if text.count("[") + text.count("{") >= _MAX_BRACKETS:
        return None
    try:
        wire = _DECODER.decode(text)
    except msgspec.DecodeError:  # includes ValidationError
        return None
    timestamp = _timestamp(wire.timestamp)
    metadata = _metadata(wire.metadata)
    if timestamp is None or metadata is None:
        return None
    games_expected, games_processed, completion_pct, counts = metadata
    hints = _hints(
        wire.processing_mode.value if wire.processing_mode else None,
        wire.backfill_mode,
        wire.skip_downstream_trigger,
        wire.trigger_source,
    )
    # Positional: the field order of `Completion` (keywords cost twice as much for a named tuple).
    return Completion(
        wire.processor_name,
        wire.phase,
        wire.game_date,
        wire.status,
        timestamp,
        wire.record_count,
        games_expected,
        games_processed,
        completion_pct,
        counts,
        wire.output_table,
        wire.correlation_id,
        hints,
    )


_HintsKey = tuple[str | None, bool, bool, str | None]
_KNOWN_HINTS: dict[_HintsKey, ModeHints] = {}
_KNOWN_HINTS_LIMIT = 64


def _hints(
    processing_mode: str | None,
    backfill_mode: bool,
    skip_downstream_trigger: bool,
    trigger_source: str | None,
) -> ModeHints:
    """ModeHints are frozen and a day's messages carry the same few (mostly: no mode, trigger_source
    "pubsub"), so they are shared instead of built per message. Bounded: trigger_source is free text."""
    key = (processing_mode, backfill_mode, skip_downstream_trigger, trigger_source)
    hints = _KNOWN_HINTS.get(key)
    if hints is None:
        hints = ModeHints(*key)
        if len(_KNOWN_HINTS) < _KNOWN_HINTS_LIMIT:
            _KNOWN_HINTS[key] = hints
    return hints


def _timestamp(text: str) -> datetime | None:
    if _TIMESTAMP.fullmatch(text) is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):  # Feb 30th, hour 24, an offset past year 1 or 9999: pydantic's call
        return None


_Metadata = tuple[int | None, int | None, float | None, dict[str, int]]


def _metadata(metadata: dict[str, Any]) -> _Metadata | None:
    """`CompletionMetadata`'s checks on the declared fields, and `numeric_metadata()` in the same order
    (declared fields first, then the extra ones as they came). None: leave it to pydantic."""
    if "completion_percentage" in metadata:
        return None  # the alias, and how it mixes with `completion_pct`, is pydantic's to decide
    for name in _COUNTED_METADATA:
        value = metadata.get(name)
        if value is not None and (type(value) is not int or value < 0):
            return None  # a float or a string count is coerced (or refused) by pydantic, not here
    pct = metadata.get("completion_pct")
    if pct is not None:
        if type(pct) is not float and type(pct) is not int:
            return None
        if not 0 <= pct <= 100:
            return None
        pct = float(pct)
    counts = {name: metadata[name] for name in _COUNTED_METADATA if metadata.get(name) is not None}
    for name, value in metadata.items():
        if type(value) is int and name not in counts and name != "completion_pct":
            counts[name] = value
    return metadata.get("games_expected"), metadata.get("games_processed"), pct, counts
