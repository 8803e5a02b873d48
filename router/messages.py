"""The completion message processors publish, validated. Unknown extra fields are tolerated and kept."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from policies.model import Mode, Status


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
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def numeric_metadata(self) -> dict[str, int]:
        """Integer metadata fields a processor spec may name as its output count."""
        fields = {**self.metadata.__dict__, **(self.metadata.model_extra or {})}
        return {
            key: value
            for key, value in fields.items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
