"""Recorded completions as state-store documents, and back.

The document is what every instance can read: when instances share the work (each pulls some of the
messages), an instance merges the completions the others recorded before it decides (see `Engine._sync`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from policies.model import Status
from policies.modes import ModeHints
from policies.reports import Report
from router.effects import RecordCompletion
from router.events import CompletionArrived


def completion_id(effect: RecordCompletion) -> str:
    return f"{effect.processor or 'unknown'}__{effect.message_id}"


def to_document(effect: RecordCompletion) -> dict[str, Any]:
    report = effect.report
    return {
        "message_id": effect.message_id,
        "processor": effect.processor,
        "raw_name": effect.raw_name,
        "status": report.status.value,
        "timestamp": report.timestamp,
        "record_count": report.record_count,
        "games_expected": report.games_expected,
        "games_processed": report.games_processed,
        "completion_pct": report.completion_pct,
        "counts": dict(report.counts),
        "output_table": report.output_table,
        "correlation_id": report.correlation_id,
        # As JSON text: a processor's JSON may hold what Firestore cannot store (arrays in arrays, huge ints).
        "message_json": effect.message_json,
    }


def from_document(document: Mapping[str, Any]) -> CompletionArrived:
    """The event another instance received, rebuilt from what it recorded (mode hints are not needed:
    the mode is pinned in the shared store)."""
    processor = document.get("processor")
    report = Report(
        processor=processor or document["raw_name"],
        status=Status(document["status"]),
        timestamp=_aware(document["timestamp"]),
        record_count=document.get("record_count"),
        games_expected=document.get("games_expected"),
        games_processed=document.get("games_processed"),
        completion_pct=document.get("completion_pct"),
        counts=dict(document.get("counts") or {}),
        output_table=document.get("output_table"),
        correlation_id=document.get("correlation_id"),
    )
    return CompletionArrived(
        message_id=document["message_id"],
        processor=processor,
        raw_name=document["raw_name"],
        report=report,
        hints=ModeHints(),
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
