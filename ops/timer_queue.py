"""When each key next needs a look without any message arriving: a heap of (due time, key).

A key keeps only its latest timer: the machine says when it wants to wake (`DateState.wake_at`), and an entry
whose time is no longer the key's `wake_at` is stale and skipped, so rescheduling never searches the heap.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import datetime

from router.keys import Key

# Whether `key` still wants to wake at `at` (its state's `wake_at`).
IsLive = Callable[[Key, datetime], bool]


class TimerQueue:
    def __init__(self, is_live: IsLive) -> None:
        self._heap: list[tuple[datetime, int, Key]] = []
        self._order = itertools.count()  # ties keep the order timers were set in
        self._is_live = is_live

    def set(self, key: Key, at: datetime) -> None:
        heapq.heappush(self._heap, (at, next(self._order), key))

    def pop_due(self, now: datetime) -> Key | None:
        """The next key whose live timer is due at `now`, or None."""
        while self._heap and self._heap[0][0] <= now:
            at, _, key = heapq.heappop(self._heap)
            if self._is_live(key, at):
                return key
        return None

    def next_at(self) -> datetime | None:
        """The earliest live timer (stale entries at the top are dropped here)."""
        while self._heap:
            at, _, key = self._heap[0]
            if self._is_live(key, at):
                return at
            heapq.heappop(self._heap)
        return None
