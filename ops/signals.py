"""The one task that owns the process signals.

anyio's signal receiver installs handlers that only record the signal (like uvicorn's `handle_exit`, which
only sets a flag); everything else happens here, in ordinary async code:

- SIGHUP: reload the policy (`on_reload`). Reloads run one at a time; an error in one is logged, never fatal.
- first SIGTERM / SIGINT: start the graceful stop (`on_stop(signum)`), e.g. stop pulling, then drain.
- second SIGTERM / SIGINT: the drain is taking too long for the operator; leave at once (`os._exit(1)`, no
  cleanup), the way a second Ctrl-C works in uvicorn.

The callbacks run in tasks of their own, so a slow reload or a long drain never stops the watcher from
seeing the next signal. Keep this task running until the process ends: cancel it last in shutdown, or a
second SIGTERM during the drain would find no receiver.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
from collections.abc import Awaitable, Callable

import anyio
from anyio.abc import TaskStatus

log = logging.getLogger("cascade.signals")

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


async def watch_signals(
    on_reload: Callable[[], Awaitable[None]],
    on_stop: Callable[[int], Awaitable[None] | None],
    *,
    force_exit: Callable[[int], object] = os._exit,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Own SIGHUP, SIGTERM and SIGINT until cancelled (or until a forced exit).

    Start it with `await task_group.start(watch_signals, ...)`: it reports started once the handlers are
    installed, so no signal sent after that can reach Python's default handler.
    """
    reloading = anyio.Lock()
    stopping = False

    async def reload() -> None:
        async with reloading:
            try:
                await on_reload()
            except Exception:
                # The running policy stays in force; a failed reload must not bring the router down.
                log.exception("policy reload failed", extra={"signal": "SIGHUP"})

    async def stop(signum: int) -> None:
        result = on_stop(signum)
        if inspect.isawaitable(result):
            await result

    async with anyio.create_task_group() as tasks:
        with anyio.open_signal_receiver(signal.SIGHUP, *STOP_SIGNALS) as received:
            task_status.started()
            async for signum in received:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP and not stopping:
                    log.info("SIGHUP: reloading the policy", extra={"signal": name})
                    tasks.start_soon(reload)
                elif signum == signal.SIGHUP:
                    log.info("SIGHUP ignored: shutting down", extra={"signal": name})
                elif not stopping:
                    stopping = True
                    log.info("%s: shutting down gracefully (again to force)", name, extra={"signal": name})
                    tasks.start_soon(stop, signum)
                else:
                    log.warning("%s again: exiting now, without cleanup", name, extra={"signal": name})
                    force_exit(1)
                    tasks.cancel_scope.cancel()
                    return
