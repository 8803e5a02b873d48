"""Inputs to the state machine: what happened to a (game_date, transition)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policies.breaker import Breaker
from policies.model import Mode
from policies.modes import ModeHints
from policies.reports import Report


@dataclass(frozen=True, slots=True)
class CompletionArrived:
    message_id: str
    # Canonical processor name, or None when no policy name matches (recorded, alerted, never counted).
    processor: str | None
    raw_name: str
    report: Report
    hints: ModeHints
    # The message body exactly as published (unknown extra fields included): it is what gets recorded.
    original: str = ""


@dataclass(frozen=True, slots=True)
class Synced:
    """Completions that other instances recorded for this key, merged in before this instance decides.

    Several instances pull from one subscription, so each sees only some of a key's messages; the shared
    store holds them all. Merging records nothing, alerts nothing and evaluates nothing by itself."""

    completions: tuple[CompletionArrived, ...]
    # The breaker as another instance last shared it; the most recently changed one wins.
    breaker: Breaker | None = None
    # The mode pinned in the shared record: the first pin (or a later explicit one) wins over a local guess.
    mode: Mode | None = None


@dataclass(frozen=True, slots=True)
class Restored:
    """At start, or when the store answers again after an outage: a key as the shared store knows it (pinned
    mode, recorded completions, published or not), so a restarted instance re-arms its timers without
    waiting for the next message, and what other instances recorded meanwhile is decided on at once."""

    mode: Mode | None
    completions: tuple[CompletionArrived, ...]
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class Tick:
    """A timer fired: re-check, deadlines, breaker cooldown, publish retry — whatever is due."""


@dataclass(frozen=True, slots=True)
class PublishSucceeded:
    trigger_id: str
    published_at: datetime


@dataclass(frozen=True, slots=True)
class PublishFailed:
    trigger_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class AlreadyPublished:
    """The shared store says another instance published this trigger already."""

    trigger_id: str
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimHeldElsewhere:
    """Another instance holds a live claim; look again when its lease runs out."""

    trigger_id: str
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class OpenedByUpstream:
    """The upstream transition published: this one now waits for its processors, in the same mode."""

    mode: Mode
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class ExpectedDayStarted:
    """The calendar says this game date must see a run and nothing opened its first transition yet: open it
    in the mode the calendar gives now, so its deadlines run without any message. A key that is open already
    (here or, merged from the shared record, on another instance) is left as it is."""


@dataclass(frozen=True, slots=True)
class ResetBreaker:
    operator: str


@dataclass(frozen=True, slots=True)
class ForceTrigger:
    operator: str
    reason: str


Event = (
    CompletionArrived
    | Synced
    | Restored
    | Tick
    | PublishSucceeded
    | PublishFailed
    | AlreadyPublished
    | ClaimHeldElsewhere
    | OpenedByUpstream
    | ExpectedDayStarted
    | ResetBreaker
    | ForceTrigger
)
