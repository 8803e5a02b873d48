"""When a (game_date, transition) next needs the machine's attention without any message arriving."""

from __future__ import annotations

from datetime import datetime

from policies.breaker import BreakerState
from policies.deadlines import Deadlines, deadlines_for
from policies.model import Policy
from router.state import DateState, Phase


def deadlines(state: DateState, policy: Policy) -> Deadlines:
    transition = policy.transitions[state.key.transition]
    return deadlines_for(state.key.game_date, policy.modes[state.mode], transition, policy.timezone)


def wake_at(state: DateState, policy: Policy) -> datetime | None:
    if state.settled or state.key.transition not in policy.transitions:
        return None
    if not policy.modes[state.mode].cascade:
        return None
    if state.breaker.state is BreakerState.OPEN:
        return state.breaker.reopens_at(policy.breaker)
    candidates = [state.retry_at]
    if state.phase is not Phase.FAILED:
        # A failed check only changes with new input; re-checking it on a cadence would just repeat FAIL.
        candidates.append(state.next_check_at)
    if not state.self_heal_done:
        due = deadlines(state, policy)
        candidates.append(due.self_heal_at)
        if not state.fallback_done:
            candidates.append(due.fallback_at)
    return _earliest(candidates)


def _earliest(candidates: list[datetime | None]) -> datetime | None:
    """`min` of the ones that are set (the first of equals, as `min` does), without a generator frame:
    this runs on every step of every key."""
    earliest = None
    for at in candidates:
        if at is not None and (earliest is None or at < earliest):
            earliest = at
    return earliest


def due(at: datetime | None, now: datetime) -> bool:
    return at is not None and at <= now
