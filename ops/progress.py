"""A progress line on a terminal for long work (a big replay, a publish), and nothing anywhere else.

Written to stderr, so stdout stays the command's answer; only when stderr is a terminal (a pipe or a CI log
would fill with carriage returns) and the work is large enough to be worth watching. Redrawn at most every
`every_s` seconds: a replay calls `update` thousands of times a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

EVERY_S = 0.2
MIN_ITEMS = 2_000
_CLEAR = "\x1b[K"  # erase to the end of the line: a shorter line leaves no tail of the longer one


class Progress:
    """`update(done)` redraws `label done/total (pct%)`; `total` None counts without a percentage."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        min_items: int | None = None,
        every_s: float = EVERY_S,
    ) -> None:
        self.label = label
        self.total = total
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._min_items = MIN_ITEMS if min_items is None else min_items
        self._every_s = every_s
        self._last_s: float | None = None
        self._tty = _isatty(self._stream)

    def update(self, done: int) -> None:
        if not self._tty or not self._large(done):
            return
        now = self._clock()
        if self._last_s is not None and now - self._last_s < self._every_s:
            return
        self._last_s = now
        self._draw(done)

    def close(self) -> None:
        """Erase the line, so what is printed next starts on a clean line."""
        if self._last_s is not None:
            self._stream.write(_CLEAR)
            self._stream.flush()

    def counted(self, items: Iterable[str]) -> Iterator[str]:
        """`items` unchanged, counting them as they pass."""
        for done, item in enumerate(items, start=1):
            self.update(done)
            yield item

    def _large(self, done: int) -> bool:
        return (self.total if self.total is not None else done) >= self._min_items

    def _draw(self, done: int) -> None:
        text = f"{self.label} {done:,}"
        if self.total:
            text += f"/{self.total:,} ({100 * done // self.total}%)"
        # Drawn, then back to column 0: the next line printed (ours or the command's) overwrites it.
        self._stream.write(f"{_CLEAR}{text}\r")
        self._stream.flush()


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())
