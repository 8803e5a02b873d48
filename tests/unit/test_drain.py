"""The shutdown budget and the drain of in-flight handlers: a handler running when the shutdown begins
finishes within the window; one still running at the deadline is cancelled and counted."""

from __future__ import annotations

import anyio
import pytest

from ops.drain import Drain, ShutdownPlan


@pytest.mark.parametrize(
    ("grace_s", "drain_s", "settle_s", "reserve_s"),
    [(8.0, 3.5, 0.875, 1.0), (9.5, 4.25, 1.0625, 1.0), (2.0, 0.875, 0.21875, 0.25)],
)
def test_every_step_of_the_shutdown_fits_in_the_grace(
    grace_s: float, drain_s: float, settle_s: float, reserve_s: float
) -> None:
    plan = ShutdownPlan(grace_s)
    assert (plan.drain_s, plan.settle_s, plan.reserve_s) == (drain_s, settle_s, reserve_s)
    # What is left for the audit flush, after a drain and a settle that took all their time.
    assert plan.usable_s - plan.drain_s - plan.settle_s > 0
    assert plan.usable_s + plan.reserve_s == grace_s


async def test_a_running_handler_finishes_when_the_group_is_cancelled_and_a_slow_one_is_cut() -> None:
    drain = Drain()
    finished: list[str] = []
    cut: list[str] = []

    async def handler(name: str, work_s: float) -> None:
        with drain.guard() as scope:
            await anyio.sleep(work_s)
            finished.append(name)
        if scope.cancelled_caught:
            cut.append(name)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(handler, "quick", 0.2)
        tasks.start_soon(handler, "slow", 30.0)
        await anyio.sleep(0.05)
        drain.begin(0.5)
        tasks.cancel_scope.cancel()  # what a stop signal or a crash does to the group

    assert finished == ["quick"] and cut == ["slow"]
    assert (drain.in_flight, drain.drained, drain.cancelled) == (2, 1, 1)
