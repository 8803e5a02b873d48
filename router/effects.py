"""What the state machine asks the shell to do. Plain data; the shell carries them out in order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from policies.breaker import Breaker
from policies.decision import CheckResult
from policies.model import Mode
from policies.reports import Report
from router.keys import Key


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class Source(StrEnum):
    CASCADE = "cascade"
    FALLBACK = "fallback"
    SELF_HEAL = "self_heal"
    MANUAL = "manual"


# What caused an evaluation: a message, a timer, an operator's command.
Cause = Literal["event", "timer", "operator"]
# How a (game_date, transition) ended.
Outcome = Literal["triggered", "triggered_degraded", "failed"]


@dataclass(frozen=True, slots=True)
class RecordCompletion:
    key: Key
    message_id: str
    processor: str | None
    raw_name: str
    report: Report
    message_json: str  # the body exactly as published
    # The mode the message's own fields decide (stated, backfill, manual), None: left to the calendar.
    mode_hint: Mode | None = None


@dataclass(frozen=True, slots=True)
class PinMode:
    """Agree on the mode with other instances: the first pin wins unless this one is explicit."""

    key: Key
    mode: Mode
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class EmitDecision:
    key: Key
    mode: Mode
    result: CheckResult
    cause: Cause


@dataclass(frozen=True, slots=True)
class OutMessage:
    data: Mapping[str, Any]
    attributes: Mapping[str, str]
    ordering_key: str


@dataclass(frozen=True, slots=True)
class PublishTrigger:
    key: Key
    trigger_id: str
    topic: str
    mode: Mode
    source: Source
    degraded: bool
    messages: tuple[OutMessage, ...]


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    alert: str
    severity: Severity
    game_date: date | None
    transition: str | None
    message: str

    @property
    def signature(self) -> str:
        return f"{self.alert}|{self.transition or '-'}"


@dataclass(frozen=True, slots=True)
class SetTimer:
    key: Key
    at: datetime | None  # None cancels


@dataclass(frozen=True, slots=True)
class OpenDownstream:
    key: Key
    mode: Mode
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class TransitionEnded:
    """One row for the phase completion log: how this (date, transition) ended."""

    key: Key
    mode: Mode
    outcome: Outcome
    source: Source | None
    trigger_id: str | None
    opened_at: datetime
    ended_at: datetime
    completeness: float
    processors_reported: int
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShareBreaker:
    """The breaker changed: store it where the other instances read it (best effort, written rarely)."""

    key: Key
    breaker: Breaker


@dataclass(frozen=True, slots=True)
class DuplicateIgnored:
    key: Key
    message_id: str


Effect = (
    RecordCompletion
    | PinMode
    | EmitDecision
    | PublishTrigger
    | RaiseAlert
    | SetTimer
    | OpenDownstream
    | TransitionEnded
    | ShareBreaker
    | DuplicateIgnored
)

# Where each effect is carried out — the one place that says so:
# - durable: folded into the key's shared record, in the same store write as the decision
#   (`router.shared_step`), so nothing is acted on before it is recorded;
# - outbound: sent to the outside world once that write landed (`ops.engine`);
# - local: this process only (audit rows, timers, follow-up events, counts).
DURABLE = (RecordCompletion, PinMode, ShareBreaker)
OUTBOUND = (PublishTrigger, RaiseAlert, TransitionEnded)
LOCAL = (EmitDecision, SetTimer, OpenDownstream, DuplicateIgnored)
