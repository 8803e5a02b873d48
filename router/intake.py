"""From a delivered Pub/Sub message to a state-machine event, or a dead-letter reason.

Nothing here raises on bad input: every way a message can be wrong becomes a `Rejected` with a reason that
says exactly what was wrong, so the shell can dead-letter it and ack.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from policies.model import Policy
from policies.reports import Report
from router import message_fastpath
from router.events import CompletionArrived
from router.keys import Key
from router.messages import Completion, CompletionMessage


class Rejection(StrEnum):
    """Why a message is dead-lettered, as a value: the metric label, the dead-letter audit row's `category`
    and the dead-letter message's `category` attribute all carry it (the reason text says the details)."""

    NOT_JSON = "not_json"  # not UTF-8, or not JSON
    SCHEMA = "schema"  # JSON, but not a valid completion message
    UNKNOWN_TOPIC = "unknown_topic"
    WRONG_PHASE = "wrong_phase"
    TOO_LARGE = "too_large"  # over MAX_MESSAGE_BYTES, not parsed at all
    UNSTORABLE = "unstorable"  # valid, but the state store can never hold it (decided by the store)


# A completion message is about a kilobyte. Its body is recorded in one Firestore document (1 MiB at most);
# anything near that is a producer bug, refused before it is decoded (Pub/Sub delivers up to 10 MB).
MAX_MESSAGE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Accepted:
    key: Key
    event: CompletionArrived


@dataclass(frozen=True, slots=True)
class Rejected:
    category: Rejection
    reason: str


def accept(topic: str, message_id: str, data: bytes, policy: Policy) -> Accepted | Rejected:
    transition = policy.transition_for_topic(topic)
    if transition is None:
        return Rejected(
            Rejection.UNKNOWN_TOPIC,
            f"topic {topic!r} is not a completion topic of any transition in the policy",
        )
    if len(data) > MAX_MESSAGE_BYTES:
        return Rejected(
            Rejection.TOO_LARGE, f"message too large: {len(data)} bytes (at most {MAX_MESSAGE_BYTES})"
        )
    outcome = _parse(data)
    if isinstance(outcome, Rejected):
        return outcome
    parsed, original = outcome
    phases = policy.transitions[transition].phases
    if parsed.phase not in phases:
        return Rejected(
            Rejection.WRONG_PHASE,
            f"phase {parsed.phase!r} is not accepted on {topic} (expected one of {list(phases)})",
        )
    processor = policy.names().resolve(parsed.processor_name, parsed.output_table)
    key = Key(parsed.game_date, transition)
    return Accepted(key, _event(message_id, processor, parsed, original))


def _parse(data: bytes) -> tuple[Completion, str] | Rejected:
    """Decode and validate in one pass; the body text is kept as is. The fast path takes the well-formed
    messages it can vouch for; pydantic decides on everything else, and words every rejection."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(Rejection.NOT_JSON, f"not JSON: {exc}")
    fast = message_fastpath.decode(text)
    if fast is not None:
        return fast, text
    try:
        return CompletionMessage.model_validate_json(text).completion(), text
    except ValidationError as exc:
        return _rejection(exc)


def _rejection(exc: ValidationError) -> Rejected:
    first = exc.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return Rejected(Rejection.NOT_JSON, f"not JSON: {first['msg']}")
    if first["type"] == "model_type" and not first["loc"]:
        return Rejected(Rejection.SCHEMA, f"not a JSON object: got {type(first['input']).__name__}")
    return Rejected(Rejection.SCHEMA, "invalid completion message: " + _describe(exc))


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "<message>"
        parts.append(f"{field}: {error['msg']}")
    return "; ".join(parts)


def _event(message_id: str, processor: str | None, message: Completion, original: str) -> CompletionArrived:
    report = Report(
        processor=processor or message.processor_name,
        status=message.status,
        timestamp=message.timestamp,
        record_count=message.record_count,
        games_expected=message.games_expected,
        games_processed=message.games_processed,
        completion_pct=message.completion_pct,
        counts=message.counts,
        output_table=message.output_table,
        correlation_id=message.correlation_id,
    )
    # The message exactly as published (unknown fields included) is what gets recorded.
    return CompletionArrived(message_id, processor, message.processor_name, report, message.hints, original)
