"""The completion message processors publish, validated. Unknown extra fields are tolerated and kept.

`CompletionMessage` (pydantic) is the validation of record: what it rejects is dead-lettered with its error
text. `Completion` is the part of a valid message the router reads; `router.message_fastpath` produces the
same `Completion` faster for the messages it can vouch for, and leaves every other one to this model.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import NamedTuple

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from policies.model import Mode, Status
from policies.modes import ModeHints


class CompletionMetadata(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    games_expected: int | None = Field(default=None, ge=0)
    games_processed: int | None = Field(default=None, ge=0)
    completion_pct: float | None = Field(
        default=None, ge=0, le=100, validation_alias=AliasChoices("completion_pct", "completion_percentage")
    )
    completed_predictions: int | None = Field(default=None, ge=0)


class CompletionMessage(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    processor_name: str = Field(min_length=1)
    phase: str = Field(min_length=1)
    game_date: date
    status: Status
    timestamp: datetime
    execution_id: str | None = None
    correlation_id: str | None = None
    output_table: str | None = None
    output_dataset: str | None = None
    record_count: int | None = Field(default=None, ge=0)
    records_failed: int | None = Field(default=None, ge=0)
    duration_seconds: float | None = None
    trigger_source: str | None = None
    processing_mode: Mode | None = None
    backfill_mode: bool = False
    skip_downstream_trigger: bool = False
    metadata: CompletionMetadata = CompletionMetadata()

    @field_validator("game_date", mode="before")
    @classmethod
    def _iso_date(cls, value: object) -> object:
        # A game_date with a time part ("2025-12-30T00:00:00") is a producer bug worth dead-lettering.
        if isinstance(value, str) and len(value) != 10:
            raise ValueError("must be a date YYYY-MM-DD")
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Producers sometimes omit the offset; their clocks are UTC (Cloud Run), so read a naive value as UTC.
        try:
            return as_utc(value)
        except OverflowError:  # "0001-01-01T00:00:00+05:00" is before year 1 in UTC: not a time we can hold
            raise ValueError("out of range once converted to UTC") from None

    def numeric_metadata(self) -> dict[str, int]:
        """Integer metadata fields a processor spec may name as its output count."""
        fields = {**self.metadata.__dict__, **(self.metadata.model_extra or {})}
        return {
            key: value
            for key, value in fields.items()
            if isinstance(value, int) and not isinstance(value, bool)
        }

    def completion(self) -> Completion:
        metadata = self.metadata
        return Completion(
            processor_name=self.processor_name,
            phase=self.phase,
            game_date=self.game_date,
            status=self.status,
            timestamp=self.timestamp,
            record_count=self.record_count,
            games_expected=metadata.games_expected,
            games_processed=metadata.games_processed,
            completion_pct=metadata.completion_pct,
            counts=self.numeric_metadata(),
            output_table=self.output_table,
            correlation_id=self.correlation_id,
            hints=ModeHints(
                processing_mode=self.processing_mode.value if self.processing_mode else None,
                backfill_mode=self.backfill_mode,
                skip_downstream_trigger=self.skip_downstream_trigger,
                trigger_source=self.trigger_source,
            ),
        )


class Completion(NamedTuple):
    """What the router reads from a valid completion message, whichever decoder read it. A named tuple, not a
    frozen dataclass: it lives for one delivery, and builds in a fifth of the time."""

    processor_name: str
    phase: str
    game_date: date
    status: Status
    timestamp: datetime
    record_count: int | None
    games_expected: int | None
    games_processed: int | None
    completion_pct: float | None
    counts: dict[str, int]
    output_table: str | None
    correlation_id: str | None
    hints: ModeHints


def as_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
