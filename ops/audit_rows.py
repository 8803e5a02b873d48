"""Audit rows: the timeline of `cascade replay --out` and the rows the audit sink stores.

Field names are a contract (the replay timeline format, and the BigQuery tables built from these rows):
change them only together with docs and DDL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from policies.decision import CheckResult
from router.effects import EmitDecision, OutMessage, PublishTrigger, RaiseAlert, TransitionEnded

TIMELINE_KINDS = frozenset({"decision", "trigger", "alert", "dead_letter"})


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


def alert_row(at: datetime, effect: RaiseAlert) -> dict[str, Any]:
    return {
        "at": iso_z(at),
        "kind": "alert",
        "alert": effect.alert,
        "severity": effect.severity.value,
        "game_date": effect.game_date.isoformat() if effect.game_date else None,
        "transition": effect.transition,
        "message": effect.message,
    }


def dead_letter_row(at: datetime, topic: str, message_id: str, reason: str) -> dict[str, Any]:
    return {
        "at": iso_z(at),
        "kind": "dead_letter",
        "topic": topic,
        "message_id": message_id,
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
