"""The signal watcher, driven by real signals sent to this process; every wait has a deadline."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import anyio
from anyio.abc import TaskGroup

from ops.signals import watch_signals

DEADLINE_S = 5


class Calls:
    """What the callbacks saw, and an event per kind so the test can wait for them."""

    def __init__(self) -> None:
        self.reloads = 0
        self.stops: list[int] = []
        self.exits: list[int] = []
        self.reloaded = anyio.Event()
        self.stopped = anyio.Event()
        self.exited = anyio.Event()

    async def on_reload(self) -> None:
        self.reloads += 1
        self.reloaded.set()

    async def on_stop(self, signum: int) -> None:
        self.stops.append(signum)
        self.stopped.set()

    def force_exit(self, code: int) -> None:
        self.exits.append(code)
        self.exited.set()

    def rearm(self) -> None:
        self.reloaded = anyio.Event()


@asynccontextmanager
async def watching(
    calls: Calls,
    on_reload: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[int], Awaitable[None] | None] | None = None,
) -> AsyncIterator[TaskGroup]:
    """The watcher running in a task group; `start` returns once its handlers are installed."""
    async with anyio.create_task_group() as tg:
        watcher = partial(
            watch_signals, on_reload or calls.on_reload, on_stop or calls.on_stop, force_exit=calls.force_exit
        )
        await tg.start(watcher)
        yield tg
        tg.cancel_scope.cancel()


async def wait(event: anyio.Event) -> None:
    with anyio.fail_after(DEADLINE_S):
        await event.wait()


def send(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)


async def test_sighup_reloads_and_keeps_watching() -> None:
    calls = Calls()
    async with watching(calls):
        send(signal.SIGHUP)
        await wait(calls.reloaded)
        calls.rearm()
        send(signal.SIGHUP)
        await wait(calls.reloaded)

    assert calls.reloads == 2
    assert calls.stops == []
    assert calls.exits == []


async def test_first_sigterm_starts_the_graceful_stop() -> None:
    calls = Calls()
    async with watching(calls):
        send(signal.SIGTERM)
        await wait(calls.stopped)

    assert calls.stops == [signal.SIGTERM]
    assert calls.exits == []


async def test_sigint_stops_too_and_a_plain_function_is_accepted() -> None:
    calls = Calls()
    stops: list[int] = []
    stopped = anyio.Event()

    def on_stop(signum: int) -> None:
        stops.append(signum)
        stopped.set()

    async with watching(calls, on_stop=on_stop):
        send(signal.SIGINT)
        await wait(stopped)

    assert stops == [signal.SIGINT]


async def test_a_second_stop_signal_forces_the_exit_even_while_the_drain_hangs() -> None:
    calls = Calls()
    drain_started = anyio.Event()
    never = anyio.Event()

    async def hanging_drain(signum: int) -> None:
        calls.stops.append(signum)
        drain_started.set()
        await never.wait()

    async with watching(calls, on_stop=hanging_drain):
        send(signal.SIGTERM)
        await wait(drain_started)
        send(signal.SIGINT)
        await wait(calls.exited)

    assert calls.stops == [signal.SIGTERM]
    assert calls.exits == [1]


async def test_a_failing_reload_is_logged_and_the_next_sighup_still_reloads() -> None:
    calls = Calls()
    attempts = 0

    async def flaky_reload() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("disk went away")
        await calls.on_reload()

    async with watching(calls, on_reload=flaky_reload):
        send(signal.SIGHUP)
        send(signal.SIGHUP)
        await wait(calls.reloaded)

    assert attempts == 2
    assert calls.reloads == 1


async def test_a_stop_signal_is_seen_while_a_reload_hangs() -> None:
    calls = Calls()
    reload_started = anyio.Event()
    never = anyio.Event()

    async def hanging_reload() -> None:
        reload_started.set()
        await never.wait()

    async with watching(calls, on_reload=hanging_reload):
        send(signal.SIGHUP)
        await wait(reload_started)
        send(signal.SIGTERM)
        await wait(calls.stopped)

    assert calls.stops == [signal.SIGTERM]


async def test_sighup_after_the_stop_does_not_reload() -> None:
    calls = Calls()
    async with watching(calls):
        send(signal.SIGTERM)
        await wait(calls.stopped)
        send(signal.SIGHUP)
        send(signal.SIGTERM)  # the second stop signal: processed after the SIGHUP, in order
        await wait(calls.exited)

    assert calls.reloads == 0
    assert calls.exits == [1]
