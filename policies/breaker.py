"""Circuit breaker: after repeated failures stop retrying for a cooldown, then try once more."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from policies.model import BreakerSpec


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: datetime | None = None

    def reopens_at(self, spec: BreakerSpec) -> datetime | None:
        """When an open breaker lets one attempt through; None unless open."""
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return None
        return self.opened_at + timedelta(seconds=spec.cooldown_s)


def record_failure(breaker: Breaker, now: datetime, spec: BreakerSpec) -> tuple[Breaker, bool]:
    """Count a failure. Returns the new breaker and whether it just opened from closed (alert once)."""
    if breaker.state is BreakerState.HALF_OPEN:
        # The trial attempt failed: back to open for another cooldown, no new alert.
        return replace(breaker, state=BreakerState.OPEN, failures=breaker.failures + 1, opened_at=now), False
    failures = breaker.failures + 1
    if breaker.state is BreakerState.CLOSED and failures >= spec.failure_threshold:
        return Breaker(state=BreakerState.OPEN, failures=failures, opened_at=now), True
    return replace(breaker, failures=failures), False


def record_success(breaker: Breaker) -> Breaker:
    """Good data or a confirmed publish closes the breaker and forgets the failures."""
    return Breaker()


def advance(breaker: Breaker, now: datetime, spec: BreakerSpec) -> Breaker:
    """Open -> half-open once the cooldown has passed."""
    reopen = breaker.reopens_at(spec)
    if reopen is not None and now >= reopen:
        return replace(breaker, state=BreakerState.HALF_OPEN)
    return breaker
