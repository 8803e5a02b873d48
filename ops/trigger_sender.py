"""Publishing a trigger that the shared record let this instance claim, and saying how it went.

The claim was taken in the same store write as the decision (`router.shared_step`); this publishes every
message of the trigger in one request and turns the result into the event the machine hears next. Marking
the trigger published (or releasing the claim after a failure) is folded into the store write of that
event, after the messages are out: off the critical path from the last input to the trigger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from adapters.clock import Clock
from adapters.errors import PublishError
from adapters.ports import AuditRow, Outgoing, Publisher
from ops import audit_rows
from router import events as ev
from router.effects import PublishTrigger
from router.shared import Claim
from router.state import DateState

log = logging.getLogger("cascade.engine")

# Told about every confirmed trigger publish, with the seconds since its newest input (None: no input).
TriggerObserver = Callable[[PublishTrigger, float | None], None]
UNCLAIMED = "could not claim: the state store is unavailable"


class TriggerSender:
    def __init__(self, publisher: Publisher, clock: Clock, on_trigger: TriggerObserver | None = None) -> None:
        self._publisher = publisher
        self._clock = clock
        self._on_trigger = on_trigger

    async def send(
        self, effect: PublishTrigger, claim: Claim | None, state: DateState | None, rows: list[AuditRow]
    ) -> ev.Event:
        """Publish if claimed; never raises: the machine hears every outcome."""
        if claim is None:
            return ev.PublishFailed(effect.trigger_id, UNCLAIMED)
        if claim.outcome == "published":
            return ev.AlreadyPublished(effect.trigger_id, claim.published_at)
        if claim.outcome == "held":
            assert claim.lease_until is not None
            return ev.ClaimHeldElsewhere(effect.trigger_id, claim.lease_until)
        messages = [
            Outgoing(audit_rows.encode(m.data), m.attributes, m.ordering_key) for m in effect.messages
        ]
        try:
            await self._publisher.publish_many(effect.topic, messages)
        except PublishError as exc:
            return ev.PublishFailed(effect.trigger_id, str(exc))
        published_at = self._clock.now()
        rows.extend(audit_rows.trigger_row(published_at, effect, m) for m in effect.messages)
        self._announce(effect, state, published_at)
        return ev.PublishSucceeded(effect.trigger_id, published_at)

    def _announce(self, effect: PublishTrigger, state: DateState | None, published_at: datetime) -> None:
        log.info(
            "published trigger %s to %s (%s%s)",
            effect.trigger_id,
            effect.topic,
            effect.source.value,
            ", degraded" if effect.degraded else "",
            extra={
                "game_date": effect.key.game_date.isoformat(),
                "transition": effect.key.transition,
                "trigger_id": effect.trigger_id,
                "correlation_id": state.correlation_id if state is not None else None,
            },
        )
        if self._on_trigger is not None:
            last_input_at = state.last_input_at if state is not None else None
            latency_s = (published_at - last_input_at).total_seconds() if last_input_at else None
            self._on_trigger(effect, latency_s)
