"""When to send a batch: the one rule the Pub/Sub ack batcher and the BigQuery flusher share.

A batch goes out as soon as it is full, or once its oldest item has waited `max_wait_s`: under load every
request carries a full batch, and a quiet process still sends within `max_wait_s`. Pure (the caller passes
`now`), so it is tested with a table of times.
"""

from __future__ import annotations


def due_in_s(
    waiting: int, oldest_since: float | None, now: float, batch_max: int, max_wait_s: float
) -> float | None:
    """Seconds until the waiting items should be sent: 0.0 means now, None means nothing waits."""
    if waiting <= 0 or oldest_since is None:
        return None
    if waiting >= batch_max:
        return 0.0
    return max(0.0, oldest_since + max_wait_s - now)
