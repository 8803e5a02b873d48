"""The recorded history of game dates, typed: what every view is built from.

Input is audit rows (`ops/audit_rows.py` writes them; the replay timeline, the daemon's recent rows and the
BigQuery `orchestration_events.payload` all hold the same dicts). Whatever the source, rows are put in one
canonical order here (time, then kind, then content), so the same history read from any source gives the same
views: the timeline keeps write order, BigQuery does not.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from policies.model import Mode

# The order rows of one instant are read in (an input causes a check, a check a trigger, ...).
KIND_ORDER = {
    "input": 0,
    "decision": 1,
    "trigger": 2,
    "alert": 3,
    "phase_completion": 4,
    "slo": 5,
}


class HistoryError(ValueError):
    """An audit row this reader cannot use; says which row and why."""


@dataclass(frozen=True, slots=True)
class InputSeen:
    at: datetime
    transition: str
    processor: str | None  # None: matched no policy name (recorded, not counted)
    raw_name: str
    status: str
    message_id: str
    reported_at: datetime
    record_count: int | None
    mode_hint: str | None


@dataclass(frozen=True, slots=True)
class Check:
    at: datetime
    transition: str
    mode: Mode
    decision: str
    completeness: float
    quality: float
    missing: tuple[str, ...]
    reasons: tuple[str, ...]
    cause: str
    coverage: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class TriggerSent:
    at: datetime
    transition: str
    mode: Mode
    topic: str
    trigger_id: str
    source: str
    degraded: bool
    messages: int  # one row per message; per-table payloads publish several


@dataclass(frozen=True, slots=True)
class AlertSent:
    at: datetime
    alert: str
    severity: str
    transition: str | None
    message: str
    missing: tuple[str, ...]
    next_action: str | None
    next_at: datetime | None


@dataclass(frozen=True, slots=True)
class Ended:
    at: datetime
    transition: str
    mode: Mode
    outcome: str  # triggered | triggered_degraded | failed
    source: str | None
    opened_at: datetime
    ended_at: datetime
    completeness: float

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.opened_at).total_seconds()


@dataclass(frozen=True)
class DayHistory:
    game_date: date
    inputs: tuple[InputSeen, ...] = ()
    checks: tuple[Check, ...] = ()
    triggers: tuple[TriggerSent, ...] = ()
    alerts: tuple[AlertSent, ...] = ()
    ended: tuple[Ended, ...] = ()
    slo_rows: tuple[Mapping[str, Any], ...] = field(default=())
    raw: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)  # the rows, in canonical order

    def rows(self) -> tuple[Mapping[str, Any], ...]:
        return self.raw

    @property
    def mode(self) -> Mode | None:
        """The date's pinned mode: the first one any row states (a date's transitions share it)."""
        for rows in (self.checks, self.triggers, self.ended):
            if rows:
                return rows[0].mode
        return None

    @property
    def first_at(self) -> datetime | None:
        return self.opened(None)

    def opened(self, transition: str | None) -> datetime | None:
        """The first input or check (of `transition`, or of any): when the key (or date) opened here."""
        times = [r.at for r in self.inputs if transition in (None, r.transition)]
        times += [r.at for r in self.checks if transition in (None, r.transition)]
        return min(times) if times else None

    def of(self, transition: str) -> DayHistory:
        """Only the rows of one transition (date-wide SLO rows are kept)."""
        return DayHistory(
            self.game_date,
            tuple(r for r in self.inputs if r.transition == transition),
            tuple(r for r in self.checks if r.transition == transition),
            tuple(r for r in self.triggers if r.transition == transition),
            tuple(r for r in self.alerts if r.transition == transition),
            tuple(r for r in self.ended if r.transition == transition),
            self.slo_rows,
            tuple(r for r in self.raw if r.get("transition") == transition),
        )

    def trigger(self, transition: str) -> TriggerSent | None:
        return next((t for t in self.triggers if t.transition == transition), None)


def zulu_seconds(at: datetime | None) -> str | None:
    """An instant as the views' JSON shows it: UTC to the second, `...Z`; None stays None."""
    return None if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=1024)
def parse_time(text: str) -> datetime:
    """An audit row's `at` as an aware UTC instant. Remembered: one step's rows share their instant."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return value.astimezone(UTC)


def canonical_order(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Rows by time, then kind, then content: one order whatever order the source returned them in."""
    # By the instant, not the text: "...:42.5Z" sorts before "...:42Z" as text.
    return [row for _, row in _numbered_in_order(rows)]


def _numbered_in_order(rows: Iterable[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """(position in the source, 1-based, row), in the canonical order."""
    keyed = [
        (
            _instant(r),
            KIND_ORDER.get(str(r.get("kind")), 9),
            _CAUSE_ORDER.get(str(r.get("cause")), 1),
            _content(r),
            number,
            r,
        )
        for number, r in enumerate(rows, start=1)
    ]
    keyed.sort(key=lambda item: item[:4])
    return [(item[4], item[5]) for item in keyed]


# Checks of one instant: the timers due then run before the message that arrives then (the engine fires what
# is due before it delivers), operator commands after both.
_CAUSE_ORDER = {"timer": 0, "event": 1, "operator": 2}


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def _instant(row: Mapping[str, Any]) -> datetime:
    try:
        return parse_time(str(row["at"]))
    except (KeyError, ValueError):
        return _NO_TIME  # reported by `by_date` when the row is used


def _content(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def by_date(rows: Iterable[Mapping[str, Any]]) -> dict[date, DayHistory]:
    """Every dated row, grouped per game date; rows without a date (dead letters, summaries) are skipped."""
    grouped: dict[date, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for number, row in _numbered_in_order(rows):
        kind, text = row.get("kind"), row.get("game_date")
        if kind not in KIND_ORDER or not text:
            continue
        try:
            parts = grouped[date.fromisoformat(str(text))]
            parts["raw"].append(row)
            parts[str(kind)].append(_typed(str(kind), row))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HistoryError(f"audit row {number} ({kind} of {text}): {exc!r}") from exc
    return {day: _day(day, parts) for day, parts in sorted(grouped.items())}


def _day(day: date, parts: Mapping[str, list[Any]]) -> DayHistory:
    return DayHistory(
        day,
        tuple(parts.get("input", ())),
        tuple(parts.get("decision", ())),
        _one_per_trigger(parts.get("trigger", [])),
        tuple(parts.get("alert", ())),
        tuple(parts.get("phase_completion", ())),
        tuple(parts.get("slo", ())),
        tuple(parts.get("raw", ())),
    )


def _one_per_trigger(rows: list[TriggerSent]) -> tuple[TriggerSent, ...]:
    first: dict[str, TriggerSent] = {}
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        first.setdefault(row.trigger_id, row)
        counts[row.trigger_id] += 1
    return tuple(_with_messages(row, counts[tid]) for tid, row in first.items())


def _with_messages(row: TriggerSent, messages: int) -> TriggerSent:
    return TriggerSent(
        row.at, row.transition, row.mode, row.topic, row.trigger_id, row.source, row.degraded, messages
    )


def _typed(kind: str, row: Mapping[str, Any]) -> Any:
    at = parse_time(row["at"])
    if kind == "input":
        return InputSeen(
            at,
            row["transition"],
            row.get("processor"),
            row["raw_name"],
            row["status"],
            row["message_id"],
            parse_time(row["reported_at"]),
            row.get("record_count"),
            row.get("mode_hint"),
        )
    if kind == "decision":
        coverage = row.get("coverage") or {}
        return Check(
            at,
            row["transition"],
            Mode(row["mode"]),
            row["decision"],
            float(row["completeness"]),
            float(row["quality_score"]),
            tuple(row.get("missing") or ()),
            tuple(row.get("reasons") or ()),
            row.get("cause") or "event",
            tuple(sorted((str(k), float(v)) for k, v in coverage.items())),
        )
    if kind == "trigger":
        return TriggerSent(
            at,
            row["transition"],
            Mode(row["mode"]),
            row["topic"],
            row["trigger_id"],
            row["source"],
            bool(row["degraded"]),
            1,
        )
    if kind == "alert":
        next_at = row.get("next_at")
        return AlertSent(
            at,
            row["alert"],
            row["severity"],
            row.get("transition"),
            row["message"],
            tuple(row.get("missing") or ()),
            row.get("next_action"),
            parse_time(next_at) if next_at else None,
        )
    if kind == "phase_completion":
        return Ended(
            at,
            row["transition"],
            Mode(row["mode"]),
            row["outcome"],
            row.get("source"),
            parse_time(row["opened_at"]),
            parse_time(row["ended_at"]),
            float(row.get("completeness") or 0.0),
        )
    return dict(row)  # slo: kept as written (views.slo reads it)
