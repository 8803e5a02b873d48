"""Audit rows for the view tests: the example days as the engine records them, and single rows built in the
audit log's format (`ops/audit_rows.py`), so a test states only the fields its behaviour depends on."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio

from ops.audit_rows import iso_z
from ops.replay import RecordedDelivery, read_recording, replay
from policies.model import Mode, Policy
from tests.support.builders import default_policy
from views.pulse import DatePulse, pulses

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICY = default_policy()
Row = dict[str, Any]

CRITICAL_NEVER_REPORTS = "critical_never_reports.jsonl"
OVERNIGHT_FULL_CASCADE = "overnight_full_cascade.jsonl"
SAME_DAY_UPCOMING_ONLY = "same_day_upcoming_only.jsonl"
DUPLICATES_OUT_OF_ORDER = "duplicates_out_of_order_unknown.jsonl"
ALL_EXAMPLES = [
    CRITICAL_NEVER_REPORTS,
    OVERNIGHT_FULL_CASCADE,
    SAME_DAY_UPCOMING_ONLY,
    DUPLICATES_OUT_OF_ORDER,
]

PHASE2, PHASE3, PHASE4, PHASE5 = (
    "phase2_to_phase3",
    "phase3_to_phase4",
    "phase4_to_phase5",
    "phase5_to_phase6",
)
CHAIN = [PHASE2, PHASE3, PHASE4, PHASE5]


def recording_lines(name: str) -> list[str]:
    return (EXAMPLES / name).read_text(encoding="utf-8").splitlines()


def recording(name: str) -> list[RecordedDelivery]:
    return read_recording(recording_lines(name), name)


def replayed(name: str, until: datetime | None = None) -> list[Row]:
    """The audit rows of an example day, in write order (a fresh copy: tests may change them)."""
    return copy.deepcopy(list(_replayed(tuple(recording_lines(name)), until)))


def replayed_lines(lines: Iterable[str], until: datetime | None = None) -> list[Row]:
    return copy.deepcopy(list(_replayed(tuple(lines), until)))


@lru_cache(maxsize=64)
def _replayed(lines: tuple[str, ...], until: datetime | None) -> tuple[Row, ...]:
    result = anyio.run(replay, read_recording(lines), POLICY, until)
    return tuple(dict(row) for row in result.rows)


def game_date_of(name: str) -> date:
    return date.fromisoformat(json.loads(recording_lines(name)[0])["data"]["game_date"])


# --- single rows ------------------------------------------------------------------------------------------

GAME_DATE = date(2026, 1, 15)


def input_row(
    at: datetime,
    transition: str,
    processor: str | None,
    game_date: date = GAME_DATE,
    status: str = "success",
    raw_name: str | None = None,
    message_id: str | None = None,
    mode_hint: str | None = None,
) -> Row:
    return {
        "at": iso_z(at),
        "kind": "input",
        "game_date": game_date.isoformat(),
        "transition": transition,
        "processor": processor,
        "raw_name": raw_name or processor or "unknown",
        "status": status,
        "message_id": message_id or f"m-{transition}-{processor}-{iso_z(at)}",
        "reported_at": iso_z(at),
        "record_count": 100,
        "mode_hint": mode_hint,
    }


def decision_row(
    at: datetime,
    transition: str,
    mode: Mode,
    game_date: date = GAME_DATE,
    decision: str = "WAIT",
    completeness: float = 0.5,
    quality: float = 1.0,
    missing: Iterable[str] = (),
    cause: str = "event",
    reasons: Iterable[str] = (),
) -> Row:
    return {
        "at": iso_z(at),
        "kind": "decision",
        "game_date": game_date.isoformat(),
        "transition": transition,
        "mode": mode.value,
        "decision": decision,
        "completeness": completeness,
        "quality_score": quality,
        "missing": list(missing),
        "reasons": list(reasons),
        "cause": cause,
        "stale": [],
        "coverage": {},
    }


def trigger_row(
    at: datetime,
    transition: str,
    mode: Mode,
    game_date: date = GAME_DATE,
    source: str = "cascade",
    degraded: bool = False,
    table: str | None = None,
) -> Row:
    payload: Row = {"game_date": game_date.isoformat()}
    if table is not None:
        payload["source_table"] = table
    return {
        "at": iso_z(at),
        "kind": "trigger",
        "game_date": game_date.isoformat(),
        "transition": transition,
        "mode": mode.value,
        "topic": POLICY.transitions[transition].publishes_to,
        "trigger_id": f"trg-{game_date}-{transition}",
        "source": source,
        "degraded": degraded,
        "payload": payload,
    }


def phase_row(
    transition: str,
    mode: Mode,
    opened_at: datetime,
    ended_at: datetime,
    game_date: date = GAME_DATE,
    outcome: str = "triggered",
    source: str | None = "cascade",
    completeness: float = 1.0,
) -> Row:
    return {
        "at": iso_z(ended_at),
        "kind": "phase_completion",
        "game_date": game_date.isoformat(),
        "transition": transition,
        "mode": mode.value,
        "outcome": outcome,
        "source": source if outcome != "failed" else None,
        "trigger_id": f"trg-{game_date}-{transition}" if outcome != "failed" else None,
        "opened_at": iso_z(opened_at),
        "ended_at": iso_z(ended_at),
        "completeness": completeness,
        "processors_reported": 1,
        "missing": [],
    }


def alert_row(
    at: datetime,
    alert: str,
    transition: str | None,
    game_date: date | None = GAME_DATE,
    severity: str = "WARNING",
    message: str = "",
) -> Row:
    return {
        "at": iso_z(at),
        "kind": "alert",
        "alert": alert,
        "severity": severity,
        "game_date": game_date.isoformat() if game_date else None,
        "transition": transition,
        "message": message or alert,
        "mode": None,
        "missing": [],
        "next_action": None,
        "next_at": None,
    }


# --- whole transitions --------------------------------------------------------------------------------------


def opened(transition: str, mode: Mode, at: datetime, game_date: date = GAME_DATE) -> list[Row]:
    """The first input of a transition and the check it caused."""
    processor = next(iter(POLICY.transitions[transition].expectation(mode).all))
    return [
        input_row(at, transition, processor, game_date),
        decision_row(at, transition, mode, game_date),
    ]


def completed(
    transition: str,
    mode: Mode,
    opened_at: datetime,
    triggered_at: datetime,
    game_date: date = GAME_DATE,
    source: str = "cascade",
    completeness: float = 1.0,
    quality: float = 1.0,
) -> list[Row]:
    """A transition from its first input to its trigger and phase-completion row."""
    decision = "PROCEED" if completeness == 1.0 else "PROCEED_DEGRADED"
    return [
        *opened(transition, mode, opened_at, game_date),
        decision_row(triggered_at, transition, mode, game_date, decision, completeness, quality),
        trigger_row(triggered_at, transition, mode, game_date, source, degraded=completeness < 1.0),
        phase_row(
            transition, mode, opened_at, triggered_at, game_date, source=source, completeness=completeness
        ),
    ]


def failed(
    transition: str, mode: Mode, opened_at: datetime, failed_at: datetime, game_date: date = GAME_DATE
) -> list[Row]:
    return [
        *opened(transition, mode, opened_at, game_date),
        phase_row(transition, mode, opened_at, failed_at, game_date, outcome="failed", completeness=0.5),
    ]


def full_day(
    mode: Mode, first_at: datetime, step: timedelta, game_date: date = GAME_DATE, source: str = "cascade"
) -> list[Row]:
    """Every transition of the chain, each opening when the one before triggered and taking `step`."""
    rows: list[Row] = []
    at = first_at
    for transition in CHAIN:
        rows += completed(transition, mode, at, at + step, game_date, source)
        at += step
    return rows


def pulse_of(rows: Iterable[Row], game_date: date = GAME_DATE) -> DatePulse:
    return pulses(rows).get(game_date, DatePulse(game_date))


def policy_with_slo(**changes: Any) -> Policy:
    """The NBA policy with some `slo:` settings changed (validated like a policy file)."""
    data = POLICY.model_dump()
    data["slo"] = {**data["slo"], **changes}
    return Policy.model_validate(data)
