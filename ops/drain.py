"""The shutdown's time budget and its drain of in-flight handlers (like uvicorn's graceful shutdown).

`ShutdownPlan` splits `shutdown_grace_s` (Cloud Run kills 10 s after SIGTERM) into the ordered steps, so
every inner timeout is derived from the outer budget:

    stop pulling ─► drain in-flight handlers (drain_s) ─► settle their acks (settle_s)
                ─► flush the audit buffer (what is left until grace - reserve) ─► close (reserve_s)

`Drain` shields each running handler from the shutdown's cancellation until the drain deadline: a handler
cut between claim and publish would hold its key for the claim lease, one cut between publish and mark
would re-publish. At the deadline the rest are cancelled (their messages are nacked) and counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import anyio


@dataclass(frozen=True, slots=True)
class ShutdownPlan:
    grace_s: float

    @property
    def reserve_s(self) -> float:
        """Kept back for closing the clients and leaving the process."""
        return min(1.0, self.grace_s / 8)

    @property
    def usable_s(self) -> float:
        return self.grace_s - self.reserve_s

    @property
    def drain_s(self) -> float:
        return self.usable_s / 2

    @property
    def settle_s(self) -> float:
        """Sending the acks/nacks of what the drain settled (the consumer's `settle_timeout_s`)."""
        return self.usable_s / 8


class Drain:
    """In-flight handlers, each in a shielded scope whose deadline is set when the drain begins."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self._deadline = math.inf
        self.began = False
        self.in_flight = 0  # running when the drain began
        self.drained = 0  # of those (and any started after), finished within the window
        self.cancelled = 0  # cut at the deadline: nacked, redelivered to this or another instance

    @contextmanager
    def guard(self) -> Iterator[anyio.CancelScope]:
        """Run one handler in this; after it, `scope.cancelled_caught` says it was cut at the deadline."""
        scope = anyio.CancelScope(shield=True, deadline=self._deadline)
        self._scopes.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._scopes.discard(scope)
            if scope.cancelled_caught:
                self.cancelled += 1
            elif self.began:
                self.drained += 1

    def begin(self, window_s: float) -> None:
        """Start the window: synchronous, so it can run in the `finally` of a cancelled task."""
        if self.began:
            return
        self.began = True
        self.in_flight = len(self._scopes)
        self._deadline = anyio.current_time() + window_s
        for scope in self._scopes:
            scope.deadline = self._deadline
