"""Firestore down: when an instance stops waiting for the shared store and routes on its own.

    answering ──a call fails──▶ failing ──failing for state_store.outage_after_s──▶ outage
        ▲                                                                           │
        └────────────── a probe writes the journal into the store (reconcile) ◀─────┘

While *failing*, a completion is nacked (Pub/Sub redelivers it) and timers decide on local state without a
claim (a publish waits). In the *outage* the store is not called at all: every event is decided against this
instance's own copy of each key's shared record (the same pure `decide` as against the store), that copy is
journaled (fsync'd) before the completion is acked, and a trigger is published under a claim only this
instance saw — with the key's deterministic trigger id, so two instances in the outage may both publish the
same id, never two different ids. Every `probe_every_s` the tick loop tries the store: the journal is
written into it (`router.shared.reconcile`: completions recorded, modes pinned, publishes marked), and the
instance is back to normal.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from adapters.ports import Change, Journal, Journaled, StateStore
from policies.model import Policy, StateStoreSpec
from router import events as ev
from router.effects import RaiseAlert, Severity
from router.keys import Key
from router.records import body_of
from router.shared import EMPTY, SharedKey, reconcile
from router.shared_step import Decided, Identity, decide
from router.state import DateState

log = logging.getLogger("cascade.engine")

UNAVAILABLE = "state_store_unavailable"
RECOVERED = "state_store_recovered"
# How far ahead the probe looks when there is nothing to reconcile: a query that matches no key.
_PROBE_SINCE = timedelta(days=3650)


@dataclass
class StoreHealth:
    failing_since: datetime | None = None
    outage_since: datetime | None = None
    next_probe_at: datetime | None = None

    @property
    def in_outage(self) -> bool:
        return self.outage_since is not None

    def failed(self, now: datetime, spec: StateStoreSpec) -> bool:
        """Count a failed call; True when it begins the outage."""
        if self.failing_since is None:
            self.failing_since = now
        began = not self.in_outage and (now - self.failing_since).total_seconds() >= spec.outage_after_s
        if began:
            self.outage_since = now
        if self.in_outage:
            self.next_probe_at = now + timedelta(seconds=spec.probe_every_s)
        return began

    def begin_now(self, now: datetime, spec: StateStoreSpec) -> None:
        """A restart found a journal and the store does not answer: the outage goes on."""
        self.failing_since = self.failing_since or now
        self.outage_since = now
        self.next_probe_at = now + timedelta(seconds=spec.probe_every_s)

    def answered(self) -> None:
        self.failing_since = self.outage_since = self.next_probe_at = None

    def probe_due(self, now: datetime) -> bool:
        return self.in_outage and self.next_probe_at is not None and now >= self.next_probe_at


class LocalRouting:
    """The outage mode of one instance: its own copy of each key's shared record, journaled."""

    def __init__(self, journal: Journal, who: Identity) -> None:
        self.health = StoreHealth()
        self._journal = journal
        self._who = who
        self._ours: dict[Key, SharedKey] = {}
        self._appends = 0  # journal appends so far: a reconcile clears only what it wrote

    @property
    def active(self) -> bool:
        return self.health.in_outage

    def decide(
        self, key: Key, state: DateState | None, event: ev.Event, now: datetime, policy: Policy
    ) -> Decided:
        """`event` decided against this instance's copy of the key's record; a change is journaled first."""
        ours = self._ours.get(key, EMPTY)
        new, decided = decide(ours, state, key, event, now, policy, self._who)
        if new is not ours:
            added = new.inputs is not ours.inputs
            bodies = dict([body_of(event)]) if added and isinstance(event, ev.CompletionArrived) else {}
            self._journal.append(key, new, bodies)
            self._appends += 1
            self._ours[key] = new
        return decided

    def adopt(self, journaled: Mapping[Key, Journaled]) -> None:
        """After a restart in the outage: the journal is this instance's copy again."""
        self._ours = {key: entry.record for key, entry in journaled.items()}

    def pending(self) -> dict[Key, Journaled]:
        return self._journal.load()

    @property
    def journaled_keys(self) -> int:
        """Keys decided in this outage and not yet in the store (for the gauge; read from memory)."""
        return len(self._ours)

    async def reconcile(self, store: StateStore, now: datetime) -> list[Key]:
        """Write the journal into the store, then end the outage; returns the keys written. Raises
        `TransientError` (the outage goes on, the journal is kept) when the store still does not answer.
        Idempotent: a second run after a partial one changes nothing already written."""
        written: dict[Key, Journaled] = {}
        while True:  # handlers still decide in the outage meanwhile: clear only once all they wrote is in
            appends = self._appends
            journaled = self._journal.load()
            if not journaled:
                await store.recent(now.date() + _PROBE_SINCE)
            for key, entry in journaled.items():
                await store.update(key, self._merge(entry.record), now, entry.bodies)
            written |= journaled
            if appends == self._appends:
                break
        self._journal.clear()
        self._ours.clear()
        self.health.answered()
        return list(written)

    def _merge(self, ours: SharedKey) -> Change[None]:
        def merge(shared: SharedKey) -> tuple[SharedKey, None]:
            return reconcile(shared, ours, self._who.instance_id), None

        return merge


def began_alert(since: datetime | None, spec: StateStoreSpec) -> RaiseAlert:
    return RaiseAlert(
        UNAVAILABLE,
        Severity.ERROR,
        None,
        None,
        f"the state store has not answered since {since.isoformat() if since else 'start'} "
        f"({spec.outage_after_s} s): routing on this instance's own state, journaling locally; other "
        "instances may publish the same trigger ids (never different ones) until it answers",
    )


def recovered_alert(since: datetime | None, keys: int) -> RaiseAlert:
    return RaiseAlert(
        RECOVERED,
        Severity.INFO,
        None,
        None,
        f"the state store answers again (outage since {since.isoformat() if since else '?'}): "
        f"{keys} journaled keys written to it",
    )
