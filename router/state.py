"""The state of one (game_date, transition): everything the machine needs, immutable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from policies.breaker import Breaker
from policies.decision import CheckResult
from policies.model import Mode
from policies.reports import Report
from router.effects import Source
from router.keys import Key


class Phase(StrEnum):
    COLLECTING = "collecting"
    PUBLISHING = "publishing"  # decided; waiting for the shell to confirm the publish
    TRIGGERED = "triggered"
    TRIGGERED_DEGRADED = "triggered_degraded"
    FAILED = "failed"
    BREAKER_OPEN = "breaker_open"
    RECORDING = "recording"  # backfill: record and evaluate, never cascade

    @property
    def is_triggered(self) -> bool:
        return self in (Phase.TRIGGERED, Phase.TRIGGERED_DEGRADED)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A trigger decision on its way out (or waiting to be retried after a failed publish)."""

    trigger_id: str
    source: Source
    degraded: bool
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class Published:
    trigger_id: str
    source: Source | None
    degraded: bool
    published_at: datetime


@dataclass(frozen=True)  # no slots: `evolve` copies the instance __dict__ in one C-level call
class DateState:
    key: Key
    mode: Mode
    opened_at: datetime
    phase: Phase = Phase.COLLECTING
    mode_explicit: bool = False
    reports: Mapping[str, Report] = field(default_factory=dict)
    unknown: frozenset[str] = frozenset()
    seen: frozenset[str] = frozenset()
    breaker: Breaker = field(default_factory=Breaker)
    attempt: Attempt | None = None
    published: Published | None = None
    publish_failures: int = 0
    retry_at: datetime | None = None
    next_check_at: datetime | None = None
    fallback_done: bool = False
    self_heal_done: bool = False
    last: CheckResult | None = None
    correlation_id: str | None = None
    wake_at: datetime | None = None
    # Newest report time among inputs: the start of the trigger latency measurement.
    last_input_at: datetime | None = None
    # Opened by the game-day calendar, not by a message or the upstream transition (a silent game day).
    expected: bool = False

    def evolve(self, **changes: Any) -> DateState:
        """A copy with `changes` applied. `dataclasses.replace` does the same ~10x slower; the machine copies
        the state a few times per step and this is on the replay's hot path."""
        if not _FIELD_NAMES.issuperset(changes):
            raise TypeError(f"DateState has no field(s) {sorted(changes.keys() - _FIELD_NAMES)}")
        new = _new_instance(DateState)
        fields_of_new = new.__dict__
        fields_of_new.update(self.__dict__)
        fields_of_new.update(changes)
        return new

    @property
    def settled(self) -> bool:
        """No more automatic work: triggered, or a publish confirmation is outstanding."""
        # A tuple, not a set: `in` compares by identity first, a set would hash the member (Enum.__hash__ is
        # Python code), and this is asked several times per step.
        return self.phase in _SETTLED


_SETTLED = (Phase.PUBLISHING, Phase.TRIGGERED, Phase.TRIGGERED_DEGRADED)
_new_instance = object.__new__
_FIELD_NAMES = frozenset(f.name for f in fields(DateState))
