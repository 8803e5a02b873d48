"""Alert rate limiting per signature: at most N per window, the rest counted and summarised once.

The old system flooded the on-call channel: one alert per message per date. Here a signature (alert name and
transition) may fire `max_per_window` times per window; further alerts are counted, and when the window ends
one summary reports how many were held back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from policies.model import AlertLimitSpec


@dataclass(frozen=True, slots=True)
class AlertWindow:
    started_at: datetime
    sent: int = 0
    suppressed: int = 0


@dataclass(frozen=True, slots=True)
class Admission:
    send: bool
    windows: Mapping[str, AlertWindow]


@dataclass(frozen=True, slots=True)
class Summary:
    signature: str
    suppressed: int
    window_started_at: datetime


def admit(
    windows: Mapping[str, AlertWindow], signature: str, now: datetime, spec: AlertLimitSpec
) -> Admission:
    """Decide whether one alert with `signature` goes out now. Closed windows must be flushed first."""
    current = windows.get(signature)
    if current is None or _expired(current, now, spec):
        current = AlertWindow(started_at=now)
    if current.sent < spec.max_per_window:
        updated = AlertWindow(current.started_at, current.sent + 1, current.suppressed)
        return Admission(True, {**windows, signature: updated})
    updated = AlertWindow(current.started_at, current.sent, current.suppressed + 1)
    return Admission(False, {**windows, signature: updated})


def flush(
    windows: Mapping[str, AlertWindow], now: datetime, spec: AlertLimitSpec
) -> tuple[dict[str, AlertWindow], list[Summary]]:
    """Drop expired windows; return one summary for each that held alerts back."""
    kept: dict[str, AlertWindow] = {}
    summaries: list[Summary] = []
    for signature, window in windows.items():
        if not _expired(window, now, spec):
            kept[signature] = window
        elif window.suppressed:
            summaries.append(Summary(signature, window.suppressed, window.started_at))
    return kept, summaries


def next_flush_at(windows: Mapping[str, AlertWindow], spec: AlertLimitSpec) -> datetime | None:
    """When the earliest window with held-back alerts closes (so its summary is not delayed)."""
    ends = [w.started_at + timedelta(seconds=spec.window_s) for w in windows.values() if w.suppressed]
    return min(ends, default=None)


def _expired(window: AlertWindow, now: datetime, spec: AlertLimitSpec) -> bool:
    return now >= window.started_at + timedelta(seconds=spec.window_s)
