"""The shared "when is a batch due" rule (acks and audit rows), as a table of fixed times."""

from __future__ import annotations

import pytest

from adapters.batching import due_in_s


@pytest.mark.parametrize(
    ("waiting", "oldest_since", "now", "expected"),
    [
        (0, None, 100.0, None),  # nothing waits: no deadline, wait for the next item
        (0, 90.0, 100.0, None),  # (a stale timestamp with an empty queue still means nothing waits)
        (10, 99.5, 100.0, 0.0),  # full: now, however young
        (25, 99.9, 100.0, 0.0),  # over full (items arrived during a send): now
        (1, 100.0, 100.0, 2.0),  # one item, just queued: the whole wait
        (3, 99.5, 100.0, 1.5),  # partial: the rest of the oldest item's wait
        (3, 98.0, 100.0, 0.0),  # partial whose oldest item waited exactly the limit: now
        (3, 90.0, 100.0, 0.0),  # partial, long overdue (after an outage): now, never negative
    ],
)
def test_a_batch_is_due_when_full_or_when_its_oldest_item_has_waited_the_limit(
    waiting: int, oldest_since: float | None, now: float, expected: float | None
) -> None:
    assert due_in_s(waiting, oldest_since, now, batch_max=10, max_wait_s=2.0) == expected
