"""Holds the alert windows for the pure rate limiter in `policies.alert_limit`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from policies import alert_limit
from policies.model import AlertLimitSpec
from router.effects import RaiseAlert, Severity


class AlertGate:
    def __init__(self) -> None:
        self._windows: Mapping[str, alert_limit.AlertWindow] = {}
        self.suppressed_total = 0

    def admit(self, signature: str, now: datetime, spec: AlertLimitSpec) -> bool:
        admission = alert_limit.admit(self._windows, signature, now, spec)
        self._windows = admission.windows
        if not admission.send:
            self.suppressed_total += 1
        return admission.send

    def summaries(self, now: datetime, spec: AlertLimitSpec) -> list[RaiseAlert]:
        """One aggregated alert per signature whose window closed with alerts held back."""
        self._windows, closed = alert_limit.flush(self._windows, now, spec)
        return [_summary_alert(summary, spec) for summary in closed]

    def next_flush_at(self, spec: AlertLimitSpec) -> datetime | None:
        return alert_limit.next_flush_at(self._windows, spec)


def _summary_alert(summary: alert_limit.Summary, spec: AlertLimitSpec) -> RaiseAlert:
    name, _, transition = summary.signature.partition("|")
    return RaiseAlert(
        alert="alerts_suppressed",
        severity=Severity.WARNING,
        game_date=None,
        transition=None if transition in ("", "-") else transition,
        message=(
            f"{summary.suppressed} more {name!r} alert(s) held back after {spec.max_per_window} "
            f"in the {spec.window_s}s window from {summary.window_started_at.isoformat()}"
        ),
    )
