"""The policy as immutable, validated data.

Everything a decision depends on lives here: which processors each transition expects per mode, the mode
thresholds, deadlines, breaker and retry settings. Units are in the names (`recheck_every_s`). Models are
frozen and reject unknown keys, so a typo in the policy file is an error rather than a silently ignored
setting.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from policies.clock_math import parse_hhmm_minutes, zone
from policies.names import NameIndex, lookup_keys


class Mode(StrEnum):
    OVERNIGHT = "overnight"
    SAME_DAY = "same_day"
    TOMORROW = "tomorrow"
    MANUAL = "manual"
    BACKFILL = "backfill"


class Status(StrEnum):
    SUCCESS = "success"
    PARTIAL = "partial"
    NO_DATA = "no_data"
    FAILED = "failed"


class LocatedError(ValueError):
    """A validation error from a cross-field check that knows which field is to blame."""

    def __init__(self, path: tuple[str, ...], message: str) -> None:
        self.path = path
        super().__init__(message)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# Policy file formats this code reads; a file written for a newer cascade is refused, not half-understood.
SUPPORTED_VERSIONS = (1,)


class LocalTime(Frozen):
    """A wall-clock time in the policy's timezone, `day_offset` days after the game date."""

    day_offset: int = Field(ge=-2, le=3)
    at: str

    @field_validator("at")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM (24h)")
        return value

    @property
    def minutes(self) -> int:
        return parse_hhmm_minutes(self.at)


class ModeSpec(Frozen):
    completeness: Fraction
    quality: Fraction
    degraded_allowed: bool
    # None: no periodic re-check (manual is evaluated once per event, backfill only by an operator).
    recheck_every_s: int | None = Field(default=None, gt=0)
    # None: this mode never alerts on low completeness.
    alert_below: Fraction | None = None
    stale_action: Literal["wait", "proceed"] = "wait"
    fallback: LocalTime | None = None
    self_heal: LocalTime | None = None
    # False: record and evaluate, but never publish a downstream trigger automatically.
    cascade: bool = True

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> ModeSpec:
        if self.fallback and self.self_heal:
            fb = (self.fallback.day_offset, self.fallback.minutes)
            sh = (self.self_heal.day_offset, self.self_heal.minutes)
            if sh <= fb:
                raise LocatedError(("self_heal",), "self_heal must come after fallback")
        if self.self_heal and not self.fallback:
            raise LocatedError(("self_heal",), "self_heal needs a fallback deadline before it")
        return self


class QualitySpec(Frozen):
    """How a single report becomes a quality score and a coverage fraction."""

    status_scores: dict[Status, Fraction] = {
        Status.SUCCESS: 1.0,
        Status.PARTIAL: 0.7,
        Status.NO_DATA: 1.0,
        Status.FAILED: 0.0,
    }
    # Coverage of a `partial` report that carries no games/percentage metadata.
    partial_coverage: Fraction = 0.5
    # A `success` with record_count == 0 is suspect: the processor ran but wrote nothing.
    zero_records_score: Fraction = 0.5
    # Score cap for a processor whose output count is below its `min_records`.
    below_min_records_score: Fraction = 0.0

    @field_validator("status_scores")
    @classmethod
    def _all_statuses(cls, value: dict[Status, float]) -> dict[Status, float]:
        missing = [s.value for s in Status if s not in value]
        if missing:
            raise ValueError(f"missing scores for {missing}")
        return value


class ProcessorSpec(Frozen):
    aliases: tuple[str, ...] = ()
    # Where coverage comes from when the report carries it: games ratio or a percentage.
    coverage: Literal["games", "completion_pct"] = "games"
    # Output below this is suspect; `records_field` names a metadata count, else record_count is used.
    min_records: int | None = Field(default=None, ge=0)
    records_field: str | None = None


class Expectation(Frozen):
    critical: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.critical + self.optional

    @model_validator(mode="after")
    def _disjoint(self) -> Expectation:
        both = set(self.critical) & set(self.optional)
        if both:
            raise ValueError(f"processors listed as both critical and optional: {sorted(both)}")
        if not self.critical and not self.optional:
            raise ValueError("expects no processors at all: the check could never be evaluated")
        return self


PayloadKind = Literal["default", "per_table", "predictions", "export"]


class TransitionSpec(Frozen):
    listens_to: str = Field(min_length=3)
    publishes_to: str = Field(min_length=3)
    # Values of the message's `phase` field accepted on this topic.
    phases: tuple[str, ...] = Field(min_length=1)
    payload: PayloadKind = "default"
    export_types: tuple[str, ...] = ()
    # Shifts every mode deadline for this transition (later phases run later in the night).
    deadline_offset_s: int = 0
    # The transition whose completions the published trigger produces; its state opens on publish, so its
    # deadlines run even if none of its processors ever reports.
    next: str | None = None
    # Per mode; `default` covers modes not listed.
    expected: dict[str, Expectation]

    @field_validator("expected")
    @classmethod
    def _known_modes(cls, value: dict[str, Expectation]) -> dict[str, Expectation]:
        allowed = {m.value for m in Mode} | {"default"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown mode(s) {unknown}; allowed: {sorted(allowed)}")
        missing = [m.value for m in Mode if m.value not in value]
        if missing and "default" not in value:
            raise ValueError(f"no expectation for mode(s) {missing} and no `default`")
        return value

    def expectation(self, mode: Mode) -> Expectation:
        return self.expected.get(mode.value) or self.expected["default"]

    @property
    def processors(self) -> frozenset[str]:
        return frozenset(name for exp in self.expected.values() for name in exp.all)


class BreakerSpec(Frozen):
    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: int = Field(default=1800, gt=0)


class RetrySpec(Frozen):
    initial_s: float = Field(default=5.0, gt=0)
    max_s: float = Field(default=300.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1.0)

    def delay_s(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): exponential, capped."""
        return float(min(self.max_s, self.initial_s * self.multiplier ** max(0, attempt - 1)))


class AlertLimitSpec(Frozen):
    max_per_window: int = Field(default=5, ge=1)
    window_s: int = Field(default=3600, gt=0)


class StateStoreSpec(Frozen):
    """When an instance stops waiting for the shared state store and routes on its own (README, "When
    Firestore is down"). Until `outage_after_s` of continuous failure, completions are nacked (Pub/Sub
    redelivers them); after it, they are journaled locally, decided here and acked."""

    outage_after_s: int = Field(default=60, ge=0)
    # In the outage, how often the store is tried again (a try of a stopped store waits for its timeout).
    probe_every_s: int = Field(default=10, gt=0)


class ModeSlo(Frozen):
    """Per-date objectives for one mode; None: no objective of that kind for the mode."""

    # First phase-2 input of a date -> its last transition's trigger published.
    end_to_end_s: int | None = Field(default=None, gt=0)
    # Lowest completeness / quality among the date's triggers.
    completeness: Fraction | None = None
    quality: Fraction | None = None


def _default_mode_slos() -> dict[Mode, ModeSlo]:
    # Same-day numbers are the design's; the other modes follow their thresholds, with the time their
    # deadlines allow (overnight has until the next morning, tomorrow a few hours before the evening).
    return {
        Mode.OVERNIGHT: ModeSlo(end_to_end_s=8 * 3600, completeness=1.0, quality=0.95),
        Mode.SAME_DAY: ModeSlo(end_to_end_s=2 * 3600, completeness=0.8, quality=0.90),
        Mode.TOMORROW: ModeSlo(end_to_end_s=4 * 3600, completeness=0.75, quality=0.85),
        Mode.MANUAL: ModeSlo(),
        Mode.BACKFILL: ModeSlo(),
    }


class SloSpec(Frozen):
    modes: dict[Mode, ModeSlo] = Field(default_factory=_default_mode_slos)
    # Rolling objectives over `window_days`: triggers with source=cascade / all triggers, and the share of
    # triggers that needed the self-heal deadline.
    cascade_success_rate: Fraction = 0.95
    self_heal_share_max: Fraction = 0.20
    # Per-date objectives (latency, completeness, quality) are met when this share of the window's dates
    # met them.
    dates_met_target: Fraction = 0.95
    window_days: int = Field(default=30, ge=1, le=365)
    # A date in one of `stuck_modes` that made no progress (no input, no trigger) for this long is stuck.
    stuck_after_s: int = Field(default=2 * 3600, gt=0)
    stuck_modes: tuple[Mode, ...] = (Mode.SAME_DAY,)
    # ETA: the median duration of each transition over the last `eta_history_days` days of the same mode;
    # `default_transition_s` where there is no history yet.
    eta_history_days: int = Field(default=14, ge=1, le=365)
    default_transition_s: int = Field(default=1800, gt=0)

    def for_mode(self, mode: Mode) -> ModeSlo:
        return self.modes.get(mode, ModeSlo())


class DateRange(Frozen):
    """Local calendar days `first` .. `last`, both included."""

    first: date
    last: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.last < self.first:
            raise LocatedError(("last",), f"{self.last} is before first ({self.first})")
        return self

    def holds(self, day: date) -> bool:
        return self.first <= day <= self.last


class CalendarSpec(Frozen):
    """The season's game days: which dates must see a run even when no message arrives for them."""

    # Named ranges in season order (regular season, play-in, playoffs): each starts after the previous ends.
    game_days: dict[str, DateRange] = Field(min_length=1)
    # Days inside those ranges with no game (All-Star break, holidays); each inside the season.
    off_days: dict[str, DateRange] = {}
    # When an expected game day that has no key yet is opened, relative to the game date. At or after the
    # overnight cut-over of the game date (so the calendar pins overnight, never same_day: a same-day key
    # would fail at its 13:00 self-heal before the overnight run even started), and at most a day later
    # (later is backfill, which has no deadline). Default: an hour before the overnight fallback (06:00).
    open_at: LocalTime = LocalTime(day_offset=1, at="05:00")
    # Alert `no_completions` once when no completion message at all arrived for this long, counting only
    # the hours of game days (off days and the off-season do not count). None: never.
    silence_alert_after_s: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> CalendarSpec:
        previous: tuple[str, DateRange] | None = None
        for name, span in self.game_days.items():
            if previous is not None and span.first <= previous[1].last:
                raise LocatedError(
                    ("game_days", name, "first"),
                    f"{span.first} is not after {previous[0]} (ends {previous[1].last}): ranges go in "
                    "season order and do not overlap",
                )
            previous = (name, span)
        first, last = self.season_first, self.season_last
        for name, span in self.off_days.items():
            if span.first < first or span.last > last:
                raise LocatedError(
                    ("off_days", name), f"{span.first}..{span.last} is outside the season {first}..{last}"
                )
        return self

    @property
    def season_first(self) -> date:
        return next(iter(self.game_days.values())).first

    @property
    def season_last(self) -> date:
        return list(self.game_days.values())[-1].last


class Policy(Frozen):
    version: int = 1
    timezone: str = "America/New_York"
    # From this local time a game_date == today counts as overnight: the games are over.
    overnight_cutover: str = "23:00"
    max_input_age_s: int = Field(default=12 * 3600, gt=0)
    quality: QualitySpec = QualitySpec()
    modes: dict[Mode, ModeSpec]
    processors: dict[str, ProcessorSpec]
    transitions: dict[str, TransitionSpec]
    breaker: BreakerSpec = BreakerSpec()
    publish_retry: RetrySpec = RetrySpec()
    alerts: AlertLimitSpec = AlertLimitSpec()
    state_store: StateStoreSpec = StateStoreSpec()
    slo: SloSpec = SloSpec()
    # None: no game-day calendar (no day is opened on the clock, no silence alert).
    calendar: CalendarSpec | None = None
    _names: NameIndex | None = PrivateAttr(default=None)

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            raise ValueError(f"version {value} is not supported (this cascade reads version {supported})")
        return value

    @field_validator("overnight_cutover")
    @classmethod
    def _cutover(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be HH:MM (24h)")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        zone(value)  # raises ValueError for an unknown zone
        return value

    @field_validator("modes")
    @classmethod
    def _every_mode(cls, value: dict[Mode, ModeSpec]) -> dict[Mode, ModeSpec]:
        missing = [m.value for m in Mode if m not in value]
        if missing:
            raise ValueError(f"missing mode(s) {missing}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        self._check_references()
        self._check_topics()
        self._check_aliases_unambiguous()
        self._check_calendar()
        return self

    def _check_calendar(self) -> None:
        if self.calendar is None:
            return
        opens = (self.calendar.open_at.day_offset, self.calendar.open_at.minutes)
        if not (0, parse_hhmm_minutes(self.overnight_cutover)) <= opens < (2, 0):
            raise LocatedError(
                ("calendar", "open_at"),
                f"must be from the overnight cut-over ({self.overnight_cutover}) on the game date to the end "
                "of the next day: earlier pins same_day (fails before the overnight run), later is backfill "
                "(no deadline)",
            )

    def _check_references(self) -> None:
        for name, transition in self.transitions.items():
            here = ("transitions", name)
            for mode, expectation in transition.expected.items():
                unknown = sorted(set(expectation.all) - set(self.processors))
                if unknown:
                    raise LocatedError((*here, "expected", mode), f"undeclared processor(s) {unknown}")
            if transition.next is not None and transition.next not in self.transitions:
                raise LocatedError((*here, "next"), f"{transition.next!r} is not a transition")
            if transition.payload == "export" and not transition.export_types:
                raise LocatedError((*here, "export_types"), "payload export needs export_types")

    def _check_topics(self) -> None:
        seen: dict[str, str] = {}
        for name, transition in self.transitions.items():
            if transition.listens_to in seen:
                raise LocatedError(
                    ("transitions", name, "listens_to"),
                    f"topic {transition.listens_to} is already listened to by {seen[transition.listens_to]}",
                )
            seen[transition.listens_to] = name

    def _check_aliases_unambiguous(self) -> None:
        owner: dict[str, str] = {}
        for name, spec in self.processors.items():
            for raw in (name, *spec.aliases):
                for key in lookup_keys(raw):
                    if owner.setdefault(key, name) != name:
                        raise LocatedError(
                            ("processors", name), f"name {raw!r} is ambiguous: it also matches {owner[key]}"
                        )

    def names(self) -> NameIndex:
        """The alias index, built once per policy object (a reload brings a new object, hence a new index)."""
        # Read from the private dict directly: `self._names` goes through BaseModel.__getattr__ (~3 us, and
        # this is asked once per delivery).
        private = self.__pydantic_private__
        index = private.get("_names") if private is not None else None
        if index is None:
            index = NameIndex({name: spec.aliases for name, spec in self.processors.items()})
            self._names = index
        return index

    def transition_for_topic(self, topic: str) -> str | None:
        for name, transition in self.transitions.items():
            if transition.listens_to == topic:
                return name
        return None
