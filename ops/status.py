"""The /status, /healthz and /readyz bodies: pure functions of the engine's states and the loop's timestamps.

Nothing here reads the clock or the engine by itself: the HTTP layer passes `now` and the values, so every
answer is reproducible in a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from ops.audit_rows import iso_z
from router.keys import Key
from router.state import DateState


def _at(value: datetime | None) -> str | None:
    return iso_z(value) if value is not None else None


def key_status(state: DateState) -> dict[str, Any]:
    """Everything an operator asks about one (game_date, transition), JSON-ready."""
    last, attempt, published, breaker = state.last, state.attempt, state.published, state.breaker
    trigger: dict[str, Any] | None = None
    if published is not None:
        trigger = {
            "trigger_id": published.trigger_id,
            "published_at": _at(published.published_at),
            "source": published.source.value if published.source else None,
            "degraded": published.degraded,
        }
    return {
        "game_date": state.key.game_date.isoformat(),
        "transition": state.key.transition,
        "mode": state.mode.value,
        "mode_explicit": state.mode_explicit,
        "state": state.phase.value,
        "opened_at": _at(state.opened_at),
        "completeness": last.completeness if last else None,
        "quality_score": last.quality_score if last else None,
        "missing": list(last.missing) if last else [],
        "decision": last.decision.value if last else None,
        "reasons": list(last.reasons) if last else [],
        "reported": sorted(state.reports),
        "unknown_processors": sorted(state.unknown),
        "last_input_at": _at(state.last_input_at),
        "trigger": trigger,
        # A decided trigger not confirmed yet (publishing, or waiting for a publish retry).
        "pending_trigger": (
            {
                "trigger_id": attempt.trigger_id,
                "source": attempt.source.value,
                "degraded": attempt.degraded,
                "decided_at": _at(attempt.decided_at),
            }
            if attempt is not None and published is None
            else None
        ),
        "publish_failures": state.publish_failures,
        "breaker": {
            "state": breaker.state.value,
            "failures": breaker.failures,
            "opened_at": _at(breaker.opened_at),
        },
        "wake_at": _at(state.wake_at),
    }


def status(states: Mapping[Key, DateState], since: date, now: datetime) -> dict[str, Any]:
    """Every key with a game date on or after `since`, newest date first, transitions in name order."""
    recent = [key for key in states if key.game_date >= since]
    recent.sort(key=lambda k: (-k.game_date.toordinal(), k.transition))
    return {
        "generated_at": iso_z(now),
        "since": since.isoformat(),
        "keys": [key_status(states[key]) for key in recent],
    }


def _age_s(now: datetime, at: datetime | None) -> float | None:
    return round((now - at).total_seconds(), 3) if at is not None else None


def liveness(
    now: datetime, last_tick_at: datetime | None, last_ack_at: datetime | None, max_stall_s: float
) -> tuple[bool, dict[str, Any]]:
    """Alive = the loop ticked within `max_stall_s`.

    The tick loop runs whether or not messages arrive, so its age is the progress signal. The time since the
    last ack is reported but does not decide: on a quiet afternoon nothing is delivered for hours, and a
    restart would not make messages appear. `last_tick_at` None (never ticked) is not alive: the daemon
    should set it when the loop starts, and the probe should allow for start-up time."""
    tick_age = _age_s(now, last_tick_at)
    ok = tick_age is not None and tick_age <= max_stall_s
    body: dict[str, Any] = {
        "ok": ok,
        "seconds_since_tick": tick_age,
        "seconds_since_ack": _age_s(now, last_ack_at),
        "max_stall_s": max_stall_s,
    }
    if not ok:
        body["reason"] = (
            "the loop has not ticked yet"
            if tick_age is None
            else f"no loop tick for {tick_age:.0f} s (limit {max_stall_s:.0f} s)"
        )
    return ok, body


def readiness(
    now: datetime,
    *,
    backends: Mapping[str, bool],
    last_pull_at: datetime | None,
    max_pull_age_s: float,
    next_due: datetime | None,
    max_timer_lag_s: float,
    stopping: bool = False,
) -> tuple[bool, dict[str, Any]]:
    """Ready = connected (every backend answers, Pub/Sub answered a pull recently) and caught up (no timer
    overdue by more than `max_timer_lag_s`), and not shutting down.

    `backends` holds only the backends routing depends on (Pub/Sub, the state store): the audit sink spools
    while BigQuery is away, so BigQuery being down must not take the instance out of service."""
    reasons = [f"{name} is not connected" for name, up in sorted(backends.items()) if not up]
    pull_age = _age_s(now, last_pull_at)
    if pull_age is None:
        reasons.append("no successful pull yet")
    elif pull_age > max_pull_age_s:
        reasons.append(f"last successful pull {pull_age:.0f} s ago (limit {max_pull_age_s:.0f} s)")
    lag = max(_age_s(now, next_due) or 0.0, 0.0)
    if lag > max_timer_lag_s:
        reasons.append(f"timers are {lag:.0f} s behind (limit {max_timer_lag_s:.0f} s)")
    if stopping:
        reasons.append("shutting down")
    ok = not reasons
    return ok, {
        "ok": ok,
        "backends": dict(sorted(backends.items())),
        "seconds_since_pull": pull_age,
        "timer_lag_s": lag,
        "stopping": stopping,
        "reasons": reasons,
    }
