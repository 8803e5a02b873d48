"""Small builders for events and states, so tests read as the behaviour they check."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any

from ops.policy_file import load_policy
from policies.model import Policy, Status
from policies.modes import ModeHints
from policies.reports import Report
from router.events import CompletionArrived
from router.keys import Key

_ids = itertools.count(1)


def utc(text: str) -> datetime:
    """`"2025-12-31T06:00"` -> aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def default_policy() -> Policy:
    return load_policy(None)


def key(transition: str = "phase2_to_phase3", game_date: str = "2025-12-30") -> Key:
    return Key(date.fromisoformat(game_date), transition)


def arrived(
    processor: str | None,
    at: datetime,
    status: Status = Status.SUCCESS,
    message_id: str | None = None,
    raw_name: str | None = None,
    hints: ModeHints | None = None,
    **report_fields: Any,
) -> CompletionArrived:
    report = Report(
        processor=processor or (raw_name or "unknown"),
        status=status,
        timestamp=at,
        record_count=report_fields.pop("record_count", 100),
        **report_fields,
    )
    return CompletionArrived(
        message_id=message_id or f"m-{next(_ids)}",
        processor=processor,
        raw_name=raw_name or processor or "unknown",
        report=report,
        hints=hints or ModeHints(),
    )


def message(processor_name: str, phase: str, game_date: str, timestamp: str, **fields: Any) -> dict[str, Any]:
    """A completion message as a processor publishes it."""
    return {
        "processor_name": processor_name,
        "phase": phase,
        "game_date": game_date,
        "status": fields.pop("status", "success"),
        "timestamp": timestamp,
        "record_count": fields.pop("record_count", 120),
        **fields,
    }


PHASE2_TOPIC = "nba-phase2-raw-complete"
PHASE3_TOPIC = "nba-phase3-analytics-complete"
# The class names the real processors publish, one per expected processor of the overnight run.
PHASE2_CLASSES = [
    "OddsApiGameLinesBatchProcessor",
    "NbacGamebookProcessor",
    "NbacPlayerBoxscoreProcessor",
    "BigDataBallPbpProcessor",
    "OddsApiPropsBatchProcessor",
]
PHASE3_CLASSES = [
    "PlayerGameSummaryProcessor",
    "TeamDefenseGameSummaryProcessor",
    "TeamOffenseGameSummaryProcessor",
    "UpcomingTeamGameContextProcessor",
    "UpcomingPlayerGameContextProcessor",
]
