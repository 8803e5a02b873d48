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
    # When failures or state last changed: instances sharing a breaker keep the most recent one.
    changed_at: datetime | None = None

    def reopens_at(self, spec: BreakerSpec) -> datetime | None:
        """When an open breaker lets one attempt through; None unless open."""
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return None
        return self.opened_at + timedelta(seconds=spec.cooldown_s)


def record_failure(breaker: Breaker, now: datetime, spec: BreakerSpec) -> tuple[Breaker, bool]:
    """Count a failure. Returns the new breaker and whether it just opened from closed (alert once)."""
    if breaker.state is BreakerState.HALF_OPEN:
        # The trial attempt failed: back to open for another cooldown, no new alert.
        reopened = replace(breaker, state=BreakerState.OPEN, failures=breaker.failures + 1, opened_at=now)
        return replace(reopened, changed_at=now), False
    failures = breaker.failures + 1
    if breaker.state is BreakerState.CLOSED and failures >= spec.failure_threshold:
        return Breaker(state=BreakerState.OPEN, failures=failures, opened_at=now, changed_at=now), True
    return replace(breaker, failures=failures, changed_at=now), False


def record_success(breaker: Breaker, now: datetime) -> Breaker:
    """Good data or a confirmed publish closes the breaker and forgets the failures."""
    if breaker.state is BreakerState.CLOSED and breaker.failures == 0:
        return breaker  # nothing to forget: keep it unchanged, so nothing needs to be shared
    return Breaker(changed_at=now)


def newer(local: Breaker, shared: Breaker | None) -> Breaker:
    """The breaker to use when another instance shared `shared`: the most recently changed one wins."""
    if shared is None or shared.changed_at is None:
        return local
    if local.changed_at is None or shared.changed_at > local.changed_at:
        return shared
    return local


def advance(breaker: Breaker, now: datetime, spec: BreakerSpec) -> Breaker:
    """Open -> half-open once the cooldown has passed."""
    reopen = breaker.reopens_at(spec)
    if reopen is not None and now >= reopen:
        return replace(breaker, state=BreakerState.HALF_OPEN)
    return breaker
