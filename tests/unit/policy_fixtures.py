"""Builders for the policy-layer unit tests: reports and checks that read as the behaviour they test."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from policies.decision import CheckResult, check
from policies.model import Mode, Policy, Status
from policies.reports import Report

# A fixed evaluation instant: 2025-12-31 03:00 ET, the night after game date 2025-12-30.
NOW = datetime(2025, 12, 31, 8, 0, tzinfo=UTC)
# Reports arrive an hour before NOW unless a test says otherwise: fresh under the 12 h staleness limit.
FRESH = NOW - timedelta(hours=1)


def report(
    processor: str,
    status: Status = Status.SUCCESS,
    at: datetime = FRESH,
    record_count: int | None = 100,
    **fields: Any,
) -> Report:
    """A normalised report; a healthy success with 100 records unless the test overrides it."""
    return Report(processor=processor, status=status, timestamp=at, record_count=record_count, **fields)


def healthy(policy: Policy, processor: str, at: datetime = FRESH) -> Report:
    """A success that passes every quality rule of the processor's spec (including a named output count)."""
    spec = policy.processors[processor]
    counts = {spec.records_field: max(100, spec.min_records or 0)} if spec.records_field else {}
    return report(processor, at=at, counts=counts)


def all_present(
    policy: Policy, names: Iterable[str], at: datetime = FRESH, replace: Iterable[Report] = ()
) -> dict[str, Report]:
    """One healthy report per named processor, then the reports in `replace` put in place of theirs."""
    reports = {name: healthy(policy, name, at) for name in names}
    reports.update({r.processor: r for r in replace})
    return reports


def check_in_mode(
    policy: Policy, transition: str, mode: Mode, reports: dict[str, Report], now: datetime = NOW
) -> CheckResult:
    """`check` with the expectation and thresholds the policy pairs with `mode` for `transition`."""
    expectation = policy.transitions[transition].expectation(mode)
    return check(reports, expectation, policy.modes[mode], policy, now)
