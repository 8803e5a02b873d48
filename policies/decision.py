"""The dependency decision: may the next phase start?

`check` never proceeds on doubt: a missing critical input waits, a failed one fails, and a check that cannot
be evaluated at all waits with the reason (the old system failed open).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

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
    expected = expectation.all
    present = {name: reports[name] for name in expected if name in reports}
    per_processor = {
        name: coverage(present[name], policy.processors[name], policy.quality) if name in present else 0.0
        for name in expected
    }
    completeness = sum(per_processor.values()) / len(expected)
    scores = [quality_score(r, policy.processors[n], policy.quality) for n, r in present.items()]
    quality = sum(scores) / len(scores) if scores else 0.0
    max_age = timedelta(seconds=policy.max_input_age_s)
    stale = tuple(name for name, r in present.items() if now - r.timestamp > max_age)

    base = CheckResult(
        decision=Decision.WAIT,
        completeness=round(completeness, 6),
        quality_score=round(quality, 6),
        missing=tuple(name for name in expected if name not in present),
        stale=stale,
        coverage=per_processor,
        missing_critical=tuple(n for n in expectation.critical if n not in present),
        failed_critical=tuple(
            n for n in expectation.critical if n in present and present[n].status is Status.FAILED
        ),
    )
    newest_is_stale = bool(present) and len(stale) == len(present)
    decision, reasons = _decide(base, mode, newest_is_stale, policy.max_input_age_s)
    return replace(base, decision=decision, reasons=reasons)


def _decide(
    result: CheckResult, mode: ModeSpec, newest_is_stale: bool, max_age_s: int
) -> tuple[Decision, tuple[str, ...]]:
    if result.failed_critical:
        return Decision.FAIL, (f"critical processor(s) failed: {', '.join(result.failed_critical)}",)
    if result.missing_critical:
        return Decision.WAIT, (f"critical processor(s) missing: {', '.join(result.missing_critical)}",)
    if newest_is_stale and mode.stale_action == "wait":
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
