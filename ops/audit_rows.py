"""Audit rows: the timeline of `cascade replay --out` and the rows the audit sink stores.

Field names are a contract (the replay timeline format, and the BigQuery tables built from these rows):
change them only together with docs and DDL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from policies.decision import CheckResult
from policies.model import Policy
from router.effects import (
    EmitDecision,
    OutMessage,
    PublishTrigger,
    RaiseAlert,
    RecordCompletion,
    TransitionEnded,
)
from router.next_step import next_step
from router.state import DateState

# Every kind of row the audit log (and so a replay timeline) holds.
KINDS = ("input", "decision", "trigger", "alert", "phase_completion", "slo", "dead_letter")


@lru_cache(maxsize=1024)
def iso_z(at: datetime) -> str:
    """`2025-12-31T06:12:10Z`, the form the recorded events use (fractions only when present).

    Remembered: one step's rows share its instant (a decision, its trigger messages and phase row), and
    each row asks for it again."""
    if at.tzinfo is UTC:  # the usual case: "...+00:00" cut off, no conversion needed
        text = at.isoformat()[:-6]
        return (text.rstrip("0") if at.microsecond else text) + "Z"
    utc = at.astimezone(UTC).replace(tzinfo=None)
    if utc.microsecond:
        return utc.isoformat().rstrip("0") + "Z"
    return utc.isoformat() + "Z"


def input_row(at: datetime, effect: RecordCompletion) -> dict[str, Any]:
    """A completion message as recorded: when it arrived, which processor it matched (None: no match)."""
    report = effect.report
    return {
        "at": iso_z(at),
        "kind": "input",
        "game_date": effect.key.game_date.isoformat(),
        "transition": effect.key.transition,
        "processor": effect.processor,
        "raw_name": effect.raw_name,
        "status": report.status.value,
        "message_id": effect.message_id,
        "reported_at": iso_z(report.timestamp),
        "record_count": report.record_count,
        "mode_hint": effect.mode_hint.value if effect.mode_hint else None,
    }


def decision_row(at: datetime, effect: EmitDecision) -> dict[str, Any]:
    result = effect.result
    return {
        "at": iso_z(at),
        "kind": "decision",
        "game_date": effect.key.game_date.isoformat(),
        "transition": effect.key.transition,
        "mode": effect.mode.value,
        "decision": result.decision.value,
        "completeness": result.completeness,
        "quality_score": result.quality_score,
        "missing": list(result.missing),
        "reasons": list(result.reasons),
        "cause": effect.cause,
        "stale": list(result.stale),
        "coverage": _coverage(result),
    }


def _coverage(result: CheckResult) -> dict[str, float]:
    # Most coverages are exactly 0.0 or 1.0, which round() returns unchanged; skip the call for those.
    return {
        name: value if value == 1.0 or value == 0.0 else round(value, 6)
        for name, value in result.coverage.items()
    }


def trigger_row(at: datetime, effect: PublishTrigger, message: OutMessage) -> dict[str, Any]:
    return {
        "at": iso_z(at),
        "kind": "trigger",
        "game_date": effect.key.game_date.isoformat(),
        "transition": effect.key.transition,
        "mode": effect.mode.value,
        "topic": effect.topic,
        "trigger_id": effect.trigger_id,
        "source": effect.source.value,
        "degraded": effect.degraded,
        "payload": dict(message.data),
    }


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What an alert says besides its message: the mode, what is missing, what the router does next."""

    mode: str | None = None
    missing: tuple[str, ...] = ()
    next_action: str | None = None
    next_at: datetime | None = None

    @classmethod
    def of(cls, state: DateState | None, policy: Policy) -> AlertContext:
        if state is None:
            return cls()
        upcoming = next_step(state, policy)
        missing = state.last.missing if state.last is not None else ()
        return cls(state.mode.value, tuple(missing), upcoming.action, upcoming.at)


NO_CONTEXT = AlertContext()


def alert_row(at: datetime, effect: RaiseAlert, context: AlertContext = NO_CONTEXT) -> dict[str, Any]:
    return {
        "at": iso_z(at),
        "kind": "alert",
        "alert": effect.alert,
        "severity": effect.severity.value,
        "game_date": effect.game_date.isoformat() if effect.game_date else None,
        "transition": effect.transition,
        "message": effect.message,
        "mode": context.mode,
        "missing": list(context.missing),
        "next_action": context.next_action,
        "next_at": iso_z(context.next_at) if context.next_at is not None else None,
    }


def dead_letter_row(at: datetime, topic: str, message_id: str, category: str, reason: str) -> dict[str, Any]:
    return {
        "at": iso_z(at),
        "kind": "dead_letter",
        "topic": topic,
        "message_id": message_id,
        "category": category,
        "reason": reason,
    }


def phase_row(effect: TransitionEnded) -> dict[str, Any]:
    return {
        "at": iso_z(effect.ended_at),
        "kind": "phase_completion",
        "game_date": effect.key.game_date.isoformat(),
        "transition": effect.key.transition,
        "mode": effect.mode.value,
        "outcome": effect.outcome,
        "source": effect.source.value if effect.source else None,
        "trigger_id": effect.trigger_id,
        "opened_at": iso_z(effect.opened_at),
        "ended_at": iso_z(effect.ended_at),
        "completeness": effect.completeness,
        "processors_reported": effect.processors_reported,
        "missing": list(effect.missing),
    }


# Messages and rows are trees (no cycles), so the encoder's cycle check is skipped.
_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str, check_circular=False)


def encode(data: Any) -> bytes:
    return _ENCODER.encode(data).encode()
