"""The dependency decision: may the next phase start?

`check` never proceeds on doubt: a missing critical input waits, a failed one fails, and a check that cannot
be evaluated at all waits with the reason (the old system failed open).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from policies.model import Expectation, ModeSpec, Policy, Status
from policies.reports import Report, coverage, quality_score

_FULL = 1.0 - 1e-9  # float sums of ratios must still count as 100%


class Decision(StrEnum):
    PROCEED = "PROCEED"
    PROCEED_DEGRADED = "PROCEED_DEGRADED"
    WAIT = "WAIT"
    FAIL = "FAIL"

    @property
    def proceeds(self) -> bool:
        return self in (Decision.PROCEED, Decision.PROCEED_DEGRADED)


@dataclass(frozen=True, slots=True)
class CheckResult:
    decision: Decision
    completeness: float
    quality_score: float
    missing: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    coverage: Mapping[str, float] = field(default_factory=dict)
    missing_critical: tuple[str, ...] = ()
    failed_critical: tuple[str, ...] = ()


def check(
    reports: Mapping[str, Report],
    expectation: Expectation,
    mode: ModeSpec,
    policy: Policy,
    now: datetime,
) -> CheckResult:
    """Evaluate; any error inside the evaluation becomes WAIT with the reason, never PROCEED."""
    try:
        return _check(reports, expectation, mode, policy, now)
    except Exception as exc:  # fail closed: a broken check must not let a day through
        return CheckResult(
            decision=Decision.WAIT,
            completeness=0.0,
            quality_score=0.0,
            missing=expectation.all,
            reasons=(f"check could not be evaluated: {type(exc).__name__}: {exc}",),
        )


def _check(
    reports: Mapping[str, Report],
    expectation: Expectation,
    mode: ModeSpec,
    policy: Policy,
    now: datetime,
) -> CheckResult:
    # Runs on every event and every timer of every key, so: plain loops instead of comprehensions (each
    # of those is a new frame), the decision taken before the result is built (once: a frozen dataclass).
    # The work is done in the same order as it always was: coverage of every expected processor, then the
    # scores, then staleness, so sums are added in the same order and the first error is the same one.
    expected = expectation.all
    specs, quality_spec = policy.processors, policy.quality
    present: dict[str, Report] = {}
    per_processor: dict[str, float] = {}
    missing: list[str] = []
    for name in expected:
        if name in reports:
            report = present[name] = reports[name]
            per_processor[name] = coverage(report, specs[name], quality_spec)
        else:
            per_processor[name] = 0.0
            missing.append(name)
    scores: list[float] = []
    for name, report in present.items():
        scores.append(quality_score(report, specs[name], quality_spec))
    max_age = timedelta(seconds=policy.max_input_age_s)
    stale: list[str] = []
    for name, report in present.items():
        if now - report.timestamp > max_age:
            stale.append(name)
    missing_critical: list[str] = []
    failed_critical: list[str] = []
    for name in expectation.critical:
        if name not in present:
            missing_critical.append(name)
        elif present[name].status is Status.FAILED:
            failed_critical.append(name)
    inputs = _Inputs(
        completeness=round(sum(per_processor.values()) / len(expected), 6),
        quality_score=round(sum(scores) / len(scores) if scores else 0.0, 6),
        missing=tuple(missing),
        missing_critical=tuple(missing_critical),
        failed_critical=tuple(failed_critical),
        newest_is_stale=bool(present) and len(stale) == len(present),
    )
    decision, reasons = _decide(inputs, mode, policy.max_input_age_s)
    return CheckResult(
        decision,
        inputs.completeness,
        inputs.quality_score,
        inputs.missing,
        tuple(stale),
        reasons,
        per_processor,
        inputs.missing_critical,
        inputs.failed_critical,
    )


class _Inputs(NamedTuple):
    """What the decision table reads."""

    completeness: float
    quality_score: float
    missing: tuple[str, ...]
    missing_critical: tuple[str, ...]
    failed_critical: tuple[str, ...]
    newest_is_stale: bool


def _decide(result: _Inputs, mode: ModeSpec, max_age_s: int) -> tuple[Decision, tuple[str, ...]]:
    if result.failed_critical:
        return Decision.FAIL, (f"critical processor(s) failed: {', '.join(result.failed_critical)}",)
    if result.missing_critical:
        return Decision.WAIT, (f"critical processor(s) missing: {', '.join(result.missing_critical)}",)
    if result.newest_is_stale and mode.stale_action == "wait":
        return Decision.WAIT, (f"inputs stale: newest report is older than {max_age_s}s",)
    if result.quality_score < mode.quality:
        return Decision.WAIT, (f"quality {result.quality_score:.3f} below {mode.quality:.3f}",)
    if result.completeness >= _FULL:
        return Decision.PROCEED, ("all expected inputs complete",)
    shortfall = f"completeness {result.completeness:.3f}"
    if mode.degraded_allowed and result.completeness >= mode.completeness:
        missing = f"; missing: {', '.join(result.missing)}" if result.missing else ""
        return Decision.PROCEED_DEGRADED, (
            f"{shortfall} meets degraded minimum {mode.completeness:.3f}{missing}",
        )
    if not mode.degraded_allowed:
        return Decision.WAIT, (f"{shortfall} below 1.000 and this mode does not allow degraded runs",)
    return Decision.WAIT, (f"{shortfall} below minimum {mode.completeness:.3f}",)
