"""A processor's report as the policies see it: already normalised, no transport details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from policies.model import ProcessorSpec, QualitySpec, Status


@dataclass(frozen=True, slots=True)
class Report:
    processor: str
    status: Status
    timestamp: datetime
    record_count: int | None = None
    games_expected: int | None = None
    games_processed: int | None = None
    completion_pct: float | None = None
    # Numeric metadata fields (e.g. completed_predictions) that a processor spec may name as its output count.
    counts: Mapping[str, int] = field(default_factory=dict)
    output_table: str | None = None
    correlation_id: str | None = None

    def supersedes(self, other: Report) -> bool:
        """Processors retry: the newest report by its own timestamp wins (a later success heals a failure)."""
        return self.timestamp >= other.timestamp


def coverage(report: Report, spec: ProcessorSpec, quality: QualitySpec) -> float:
    """Fraction of the processor's work that is done, 0..1."""
    if report.status is Status.FAILED:
        return 0.0
    measured = _measured_coverage(report, spec)
    if measured is not None:
        return measured
    if report.status is Status.PARTIAL:
        return quality.partial_coverage
    return 1.0


def _measured_coverage(report: Report, spec: ProcessorSpec) -> float | None:
    if spec.coverage == "completion_pct" and report.completion_pct is not None:
        return _clamp(report.completion_pct / 100.0)
    if report.games_expected is not None and report.games_processed is not None:
        if report.games_expected <= 0:
            return 1.0  # nothing was expected, so nothing is missing
        return _clamp(report.games_processed / report.games_expected)
    return None


def quality_score(report: Report, spec: ProcessorSpec, quality: QualitySpec) -> float:
    score = quality.status_scores[report.status]
    if report.status is Status.SUCCESS and report.record_count == 0:
        score = min(score, quality.zero_records_score)
    if spec.min_records is not None:
        produced = _output_count(report, spec)
        if produced is None or produced < spec.min_records:
            score = min(score, quality.below_min_records_score)
    return score


def _output_count(report: Report, spec: ProcessorSpec) -> int | None:
    if spec.records_field is not None:
        return report.counts.get(spec.records_field)
    return report.record_count


def _clamp(value: float) -> float:
    # max(0.0, min(1.0, value)) spelled out (same result for -0.0 and NaN): two builtin calls per report
    # per check add up.
    low = value if value < 1.0 else 1.0
    return low if low > 0.0 else 0.0
