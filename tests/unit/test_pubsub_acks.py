"""`AckBatcher` against a fake request function: when batches go out, retries, and the flush on shutdown.

Real (event-loop) time with short delays; every wait polls with a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from adapters.errors import CascadeError, TransientError
from adapters.pubsub_acks import AckBatcher

DEADLINE_S = 5.0


class FakeRequests:
    """Records each request as (ack, ids, sent at); `failures` are raised by the first requests in turn."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.sent: list[tuple[bool, list[str], float]] = []
        self.acked_back: list[str] = []  # what `on_acked` was told
        self.failures = list(failures or [])
        self.hang = anyio.Event()  # set by a test to make the next request hang until cancelled
        self.hang.set()

    async def send(self, ack_ids: list[str], ack: bool) -> None:
        self.sent.append((ack, list(ack_ids), anyio.current_time()))
        await self.hang.wait()
        if self.failures:
            raise self.failures.pop(0)

    def on_acked(self, ack_ids: list[str]) -> None:
        self.acked_back += ack_ids

    def batches(self, ack: bool = True) -> list[list[str]]:
        return [ids for kind, ids, _ in self.sent if kind is ack]


async def eventually(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(DEADLINE_S):
        while True:
            if condition():
                return
            await anyio.sleep(0.005)


@asynccontextmanager
async def running(batcher: AckBatcher) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(batcher.run)
        yield
        tasks.cancel_scope.cancel()


def batcher_for(requests: FakeRequests, batch_max: int = 100, delay_s: float = 0.05) -> AckBatcher:
    return AckBatcher(requests.send, requests.on_acked, "sub", batch_max, delay_s, retry_after_s=0.01)


async def test_acks_queued_within_the_delay_go_out_together_once_the_first_has_waited_the_delay() -> None:
    requests = FakeRequests()
    batcher = batcher_for(requests, delay_s=0.2)
    async with running(batcher):
        first_queued_at = anyio.current_time()
        for n in range(5):
            batcher.add(f"a{n}", ack=True)
        # Until the request is answered (not only sent): leaving the block cancels the batcher.
        await eventually(lambda: len(requests.acked_back) == 5)
    assert requests.batches() == [["a0", "a1", "a2", "a3", "a4"]]
    assert requests.sent[0][2] - first_queued_at >= 0.2
    assert requests.acked_back == ["a0", "a1", "a2", "a3", "a4"]


async def test_a_full_batch_goes_out_at_once_and_the_rest_waits_for_its_delay() -> None:
    requests = FakeRequests()
    batcher = batcher_for(requests, batch_max=3, delay_s=60.0)
    async with running(batcher):
        for n in range(7):
            batcher.add(f"a{n}", ack=True)
        await eventually(lambda: len(requests.sent) == 2)
        assert batcher.waiting == 1  # "a6": a partial batch, not due for a minute
    assert requests.batches() == [["a0", "a1", "a2"], ["a3", "a4", "a5"]]


async def test_acks_and_nacks_go_out_in_separate_requests_and_only_acks_release_leases() -> None:
    requests = FakeRequests()
    batcher = batcher_for(requests, delay_s=0.0)
    batcher.add("a1", ack=True)
    batcher.add("n1", ack=False)
    batcher.add("a2", ack=True)
    async with running(batcher):
        await eventually(lambda: len(requests.sent) == 2)
    assert requests.batches(ack=True) == [["a1", "a2"]]
    assert requests.batches(ack=False) == [["n1"]]
    assert requests.acked_back == ["a1", "a2"]


@pytest.mark.parametrize(
    ("failures", "requests_made"),
    [
        ([TransientError("503")], 2),  # retried once, then through
        ([TransientError("503"), TransientError("503")], 2),  # retried once, then given up (logged)
        ([CascadeError("400")], 1),  # refused: a retry would be refused too
    ],
)
async def test_a_failed_request_is_retried_once_if_transient_and_the_lease_is_released_either_way(
    failures: list[Exception], requests_made: int
) -> None:
    requests = FakeRequests(failures)
    batcher = batcher_for(requests, delay_s=0.0)
    async with running(batcher):
        batcher.add("a1", ack=True)
        # Released even when given up: a lease kept forever would keep the message from ever coming back.
        await eventually(lambda: requests.acked_back == ["a1"])
    assert requests.batches() == [["a1"]] * requests_made


async def test_a_request_cut_short_by_cancellation_is_sent_again_by_flush_with_what_still_waits() -> None:
    requests = FakeRequests()
    batcher = batcher_for(requests, batch_max=2, delay_s=60.0)
    requests.hang = anyio.Event()  # the first request never answers
    async with running(batcher):
        batcher.add("a1", ack=True)
        batcher.add("a2", ack=True)  # full: sent at once, and hangs
        batcher.add("a3", ack=True)  # waits for its delay
        await eventually(lambda: len(requests.sent) == 1)
    assert batcher.waiting == 3 and requests.acked_back == []

    requests.hang.set()
    with anyio.fail_after(DEADLINE_S):
        await batcher.flush()

    assert requests.batches() == [["a1", "a2"], ["a1", "a2"], ["a3"]]
    assert requests.acked_back == ["a1", "a2", "a3"] and batcher.waiting == 0


@pytest.mark.parametrize(("batch_max", "delay_s"), [(0, 0.05), (2_501, 0.05), (100, -1.0)])
def test_a_batch_size_pub_sub_would_refuse_or_a_negative_delay_is_rejected(
    batch_max: int, delay_s: float
) -> None:
    requests = FakeRequests()
    with pytest.raises(ValueError):
        AckBatcher(requests.send, requests.on_acked, "sub", batch_max, delay_s)
