"""A recorded completion as a plain document (what the shared store keeps), and back.

The fields come from `Report` itself, so a field added there is recorded and restored without touching
this module. Instances that share the work merge each other's recorded completions before deciding
(`router.shared_step`); a restarted instance rebuilds its keys from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from policies.model import Status
from policies.modes import ModeHints
from policies.reports import Report
from router.effects import RecordCompletion
from router.events import CompletionArrived

# Every Report field but `processor`, which is recorded as the canonical name (None when unknown).
_REPORT_FIELDS = tuple(f.name for f in fields(Report) if f.name != "processor")
# The message body exactly as published: kept in the completion's own document, not in the summary.
MESSAGE_JSON = "message_json"


def completion_id(completion: RecordCompletion | CompletionArrived) -> str:
    """Under which id a completion is recorded: one per processor and message (a redelivery is the same)."""
    return f"{completion.processor or 'unknown'}__{completion.message_id}"


def body_of(event: CompletionArrived) -> tuple[str, str]:
    """The completion id the machine records `event` under, and its body as published."""
    return completion_id(event), event.original


def summary(effect: RecordCompletion) -> dict[str, Any]:
    """What every instance needs to decide on this completion (no message body)."""
    report = effect.report
    document: dict[str, Any] = {
        "message_id": effect.message_id,
        "processor": effect.processor,
        "raw_name": effect.raw_name,
    }
    for name in _REPORT_FIELDS:
        document[name] = getattr(report, name)
    document["status"] = report.status.value
    document["counts"] = dict(report.counts)
    return document


def completion_document(brief: Mapping[str, Any], body: str | None) -> dict[str, Any]:
    """A completion's own document: its summary, plus the body as published when there is one (as JSON
    text, since a processor's JSON may hold what Firestore cannot store: arrays in arrays, huge ints)."""
    return {**brief, MESSAGE_JSON: body} if body is not None else dict(brief)


def from_document(document: Mapping[str, Any]) -> CompletionArrived:
    """The event another instance received, rebuilt from what it recorded (mode hints are not needed:
    the mode is pinned in the shared record)."""
    processor = document.get("processor")
    values: dict[str, Any] = {name: document.get(name) for name in _REPORT_FIELDS}
    values["status"] = Status(document["status"])
    values["timestamp"] = _aware(document["timestamp"])
    values["counts"] = dict(document.get("counts") or {})
    report = Report(processor=processor or document["raw_name"], **values)
    return CompletionArrived(
        message_id=document["message_id"],
        processor=processor,
        raw_name=document["raw_name"],
        report=report,
        hints=ModeHints(),
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
