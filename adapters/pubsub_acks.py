"""Acks and nacks of one subscription, sent in batches: one request settles many messages (issue 7).

One `acknowledge` request per message was a whole Pub/Sub request per event. `AckBatcher` queues the ack ids
that `PubSubSource` settles and sends them together:

- A batch goes out when `batch_max` ids wait, or `delay_s` after the oldest of them began to wait
  (`adapters.batching.due_in_s`). Acks and nacks (ack deadline 0) are queued and sent separately.
- Ids are only queued after their handler finished, so an ack is still only given for recorded work.
- `on_acked(ids)` is called once an ack request is over (answered, or given up). Until then the source keeps
  extending the messages' leases, so an ack waiting in the queue never lets its message expire and come back.
- A failed request is retried once when the failure is transient, then logged and given up: an un-acked
  message comes back after its ack deadline (the engine dedupes the redelivery); an un-nacked one too.
- `run()` sends due batches until cancelled; a batch whose request is cut short by the cancellation goes back
  to the head of its queue (settling twice is harmless). `flush()` then sends everything still queued: the
  caller shields it and bounds its time (shutdown).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from adapters.batching import due_in_s
from adapters.errors import CascadeError, TransientError

log = logging.getLogger("cascade.pubsub")

# Pub/Sub accepts up to 2,500 ack ids (and 512 KB) per acknowledge / modifyAckDeadline request.
MAX_ACK_IDS_PER_REQUEST = 2_500

# Sends one acknowledge (ack=True) or modifyAckDeadline-0 (ack=False) request for the ids. Raises
# `TransientError` when trying again may help, another `CascadeError` when the request was refused.
SettleRequest = Callable[[list[str], bool], Awaitable[None]]


@dataclass
class _Queue:
    ack: bool
    waiting: deque[tuple[str, float]] = field(default_factory=deque)  # (ack id, queued at), oldest first

    def due_in_s(self, now: float, batch_max: int, delay_s: float) -> float | None:
        oldest_since = self.waiting[0][1] if self.waiting else None
        return due_in_s(len(self.waiting), oldest_since, now, batch_max, delay_s)

    def take(self, count: int) -> list[tuple[str, float]]:
        return [self.waiting.popleft() for _ in range(min(count, len(self.waiting)))]


class AckBatcher:
    """Batches the acks and nacks of one subscription (see the module docstring)."""

    def __init__(
        self,
        send: SettleRequest,
        on_acked: Callable[[list[str]], None],
        subscription: str,
        batch_max: int = 100,
        delay_s: float = 0.05,
        retry_after_s: float = 0.2,
    ) -> None:
        if not 1 <= batch_max <= MAX_ACK_IDS_PER_REQUEST:
            raise ValueError(f"batch_max must be between 1 and {MAX_ACK_IDS_PER_REQUEST}")
        if delay_s < 0:
            raise ValueError("delay_s must not be negative")
        self._send = send
        self._on_acked = on_acked
        self._subscription = subscription
        self._batch_max = batch_max
        self._delay_s = delay_s
        self._retry_after_s = retry_after_s
        self._acks = _Queue(ack=True)
        self._nacks = _Queue(ack=False)
        self._changed = anyio.Event()

    @property
    def waiting(self) -> int:
        return len(self._acks.waiting) + len(self._nacks.waiting)

    def add(self, ack_id: str, ack: bool) -> None:
        """Queue an ack (True) or a nack (False). Never awaits, so a cancelled handler can still call it."""
        queue = self._acks if ack else self._nacks
        queue.waiting.append((ack_id, anyio.current_time()))
        if len(queue.waiting) == 1 or len(queue.waiting) >= self._batch_max:
            self._changed.set()  # a new deadline to wait for, or a full batch to send now

    async def run(self) -> None:
        """Send each batch when it is due, until cancelled."""
        while True:
            self._changed = anyio.Event()
            wait_s = self._due_in_s()
            if wait_s == 0.0:
                await self._send_due()
                continue
            with anyio.move_on_after(wait_s):  # None: nothing waits, only an `add` wakes us
                await self._changed.wait()

    async def flush(self) -> None:
        """Send everything queued now, batch by batch."""
        for queue in (self._acks, self._nacks):
            while queue.waiting:
                await self._send_batch(queue)

    def _due_in_s(self) -> float | None:
        now = anyio.current_time()
        waits = [q.due_in_s(now, self._batch_max, self._delay_s) for q in (self._acks, self._nacks)]
        return min((w for w in waits if w is not None), default=None)

    async def _send_due(self) -> None:
        for queue in (self._acks, self._nacks):
            while queue.due_in_s(anyio.current_time(), self._batch_max, self._delay_s) == 0.0:
                await self._send_batch(queue)

    async def _send_batch(self, queue: _Queue) -> None:
        batch = queue.take(self._batch_max)
        ack_ids = [ack_id for ack_id, _ in batch]
        try:
            await self._send_with_one_retry(ack_ids, queue.ack)
        except anyio.get_cancelled_exc_class():
            # The request may or may not have reached Pub/Sub: queue the ids again for the final flush.
            queue.waiting.extendleft(reversed(batch))
            raise
        if queue.ack:
            self._on_acked(ack_ids)

    async def _send_with_one_retry(self, ack_ids: list[str], ack: bool) -> None:
        try:
            await self._send(ack_ids, ack)
            return
        except TransientError as exc:
            log.info("%s; retrying once in %.2f s", exc, self._retry_after_s)
        except CascadeError as exc:
            self._give_up(ack_ids, ack, exc)
            return
        await anyio.sleep(self._retry_after_s)
        try:
            await self._send(ack_ids, ack)
        except CascadeError as exc:
            self._give_up(ack_ids, ack, exc)

    def _give_up(self, ack_ids: list[str], ack: bool, exc: CascadeError) -> None:
        log.warning(
            "%s of %d messages on %s failed (%s); they are redelivered after their ack deadline",
            "ack" if ack else "nack",
            len(ack_ids),
            self._subscription,
            exc,
        )
