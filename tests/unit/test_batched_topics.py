"""Best-effort notifications share a request; triggers and dead letters never wait and keep their errors."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

from adapters.batched_topics import BatchedTopics
from adapters.errors import PublishError
from adapters.memory import MemoryPublisher

STATUS, ALERTS, TRIGGERS = "status", "alerts", "triggers"


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def batched(publisher: MemoryPublisher, clock: Clock, batch_max: int = 100) -> BatchedTopics:
    return BatchedTopics(publisher, [STATUS, ALERTS], batch_max=batch_max, max_wait_s=0.2, now_s=clock)


async def test_notifications_wait_for_company_and_go_out_in_one_request_per_topic() -> None:
    publisher, clock = MemoryPublisher(), Clock()
    topics = batched(publisher, clock)
    for n in range(3):
        await topics.publish(STATUS, json.dumps({"n": n}).encode(), {"outcome": "triggered"})
    await topics.publish(ALERTS, b"{}", {"alert": "self_heal"})
    assert publisher.messages == [] and topics.due_in_s() == pytest.approx(0.2)
    clock.now_s += 0.2
    assert topics.due_in_s() == 0.0
    await topics.flush()
    assert [json.loads(m.data)["n"] for m in publisher.on(STATUS)] == [0, 1, 2]
    assert [m.attributes["alert"] for m in publisher.on(ALERTS)] == ["self_heal"]
    assert publisher.requests == 2 and topics.due_in_s() is None


async def test_a_full_batch_is_due_at_once() -> None:
    publisher, clock = MemoryPublisher(), Clock()
    topics = batched(publisher, clock, batch_max=2)
    await topics.publish(STATUS, b"1", {})
    assert topics.due_in_s() == pytest.approx(0.2)
    await topics.publish(STATUS, b"2", {})
    assert topics.due_in_s() == 0.0


async def test_other_topics_go_straight_through_with_their_errors() -> None:
    publisher, clock = MemoryPublisher(), Clock()
    topics = batched(publisher, clock)
    assert await topics.publish(TRIGGERS, b"t", {}) != ""
    assert len(publisher.on(TRIGGERS)) == 1
    publisher.fail_next(1)
    with pytest.raises(PublishError):
        await topics.publish(TRIGGERS, b"t", {})


async def test_a_batch_that_cannot_be_sent_is_counted_and_dropped_not_raised() -> None:
    publisher, clock = MemoryPublisher(), Clock()
    topics = batched(publisher, clock)
    await topics.publish(STATUS, b"1", {})
    publisher.fail_next(1)
    await topics.flush()
    assert topics.dropped == 1 and publisher.on(STATUS) == [] and topics.due_in_s() is None


async def test_the_run_loop_sends_a_batch_once_it_is_due() -> None:
    publisher = MemoryPublisher()
    topics = BatchedTopics(publisher, [STATUS], max_wait_s=0.0)  # due as soon as one waits
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(topics.run)
        await topics.publish(STATUS, b"1", {})
        with anyio.fail_after(5):
            while not publisher.on(STATUS):
                await anyio.lowlevel.checkpoint()
        tasks.cancel_scope.cancel()
    assert len(publisher.on(STATUS)) == 1
