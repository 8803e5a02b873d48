"""Alerts, status announcements and dead letters: what the engine tells the outside world besides triggers.

`AlertGate` holds the windows of the pure rate limiter (`policies.alert_limit`); `Notifier` sends what
passes, each with its audit row. An alert or status that cannot be sent must not stop routing (it stays in
the audit log); a dead letter that cannot be sent must (the message is nacked and comes back, never lost).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.errors import PublishError
from adapters.ports import AuditRow, AuditSink, Publisher
from ops import audit_rows
from policies import alert_limit
from policies.model import AlertLimitSpec
from router.effects import RaiseAlert, Severity, TransitionEnded
from router.intake import Rejection

log = logging.getLogger("cascade.engine")

# Pub/Sub's limits on a message's attributes (https://cloud.google.com/pubsub/quotas#resource_limits).
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_BYTES = 1024


_LOG_LEVELS = {
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


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


class Notifier:
    def __init__(
        self,
        publisher: Publisher,
        audit: AuditSink,
        alert_topic: str,
        status_topic: str | None,
        dead_letter_topic: str,
    ) -> None:
        self._publisher = publisher
        self._audit = audit
        self._alert_topic = alert_topic
        self._status_topic = status_topic
        self._dead_letter_topic = dead_letter_topic
        self.gate = AlertGate()

    async def alert(
        self,
        effect: RaiseAlert,
        now: datetime,
        spec: AlertLimitSpec,
        rows: list[AuditRow],
        context: audit_rows.AlertContext = audit_rows.NO_CONTEXT,
    ) -> None:
        """Send `effect` if the rate limit lets it through (its row joins `rows`)."""
        await self.flush_summaries(now, spec)
        if not self.gate.admit(effect.signature, now, spec):
            return
        row = audit_rows.alert_row(now, effect, context)
        rows.append(row)
        await self._send_alert(row)

    async def flush_summaries(self, now: datetime, spec: AlertLimitSpec) -> None:
        rows = [audit_rows.alert_row(now, s) for s in self.gate.summaries(now, spec)]
        for row in rows:
            await self._send_alert(row)
        if rows:
            await self._audit.write(rows)

    async def ended(self, effect: TransitionEnded, rows: list[AuditRow]) -> None:
        """How a key ended: a phase-log row, announced on the status topic."""
        row = audit_rows.phase_row(effect)
        rows.append(row)
        if self._status_topic is not None:
            await self._best_effort(self._status_topic, row, {"outcome": effect.outcome})

    async def dead_letter(
        self,
        topic: str,
        message_id: str,
        data: bytes,
        attributes: Mapping[str, str],
        category: Rejection,
        reason: str,
        now: datetime,
    ) -> None:
        """Publish the message as delivered, with why (`category`, `reason`), then its audit row. The caller
        acks only after this returns."""
        ours = {
            "source_topic": topic,
            "message_id": message_id,
            "category": category.value,
            "reason": _clip(reason, MAX_ATTRIBUTE_BYTES),
        }
        # Within Pub/Sub's limits whatever the message carried: a dead letter Pub/Sub refuses would be
        # nacked and redelivered forever. The original's attributes come first, as many as fit.
        kept = [(k, v) for k, v in attributes.items() if k not in ours][: MAX_ATTRIBUTES - len(ours)]
        letter_attributes = {**dict(kept), **ours}
        # A failed dead-letter publish propagates: the message is nacked and redelivered, never lost.
        await self._publisher.publish(self._dead_letter_topic, data, letter_attributes)
        row = audit_rows.dead_letter_row(now, topic, message_id, category.value, reason)
        await self._audit.write([row])

    async def _send_alert(self, row: Mapping[str, Any]) -> None:
        level = _LOG_LEVELS.get(row["severity"], logging.WARNING)
        fields = {"game_date": row["game_date"], "transition": row["transition"], "alert": row["alert"]}
        log.log(level, "alert %s: %s", row["alert"], row["message"], extra=fields)
        await self._best_effort(self._alert_topic, row, {"alert": row["alert"]})

    async def _best_effort(self, topic: str, row: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        try:
            await self._publisher.publish(topic, audit_rows.encode(row), attributes)
        except PublishError as exc:
            log.warning("%s not sent to %s (kept in the audit log): %s", row["kind"], topic, exc)


def _clip(text: str, max_bytes: int) -> str:
    """At most `max_bytes` of UTF-8 (a reason quotes what the message said, in any script)."""
    return text.encode("utf-8", "replace")[:max_bytes].decode("utf-8", "ignore")


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
