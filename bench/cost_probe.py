"""Bench-only instrumentation for `bench.router_cost`: counts what a router process sends, at the transport.

    python -m bench.cost_probe cascade     # `cascade run` (ops.cli), instrumented
    python -m bench.cost_probe relay       # the bare relay (bench.relay), instrumented the same way

`install()` runs before the process builds any client; it observes and changes no behaviour:

- every `aiohttp.ClientSession` gets one more `TraceConfig` that classifies each HTTP request by its URL
  (Pub/Sub pull / acknowledge / modifyAckDeadline / publish to a trigger topic or another topic, BigQuery,
  other) and reads the request body only where a count lives there (ack ids, a trigger's `trigger_id`);
- every grpc.aio channel (the Firestore client's) gets its `unary_unary` / `unary_stream` multicallables
  wrapped so each RPC is counted by method (Commit, BatchGetDocuments, RunQuery, ...) and timed until done;
- the handler the router passes to its `EventSource.run` (the port: `PubSubSource.run(handle)`) is wrapped so
  each delivered message gets a fresh `_Trace` in a context variable. Every request made in that context
  is an interval on the message's trace; when a publish to a trigger topic starts, the number of sequential
  rounds so far (overlapping intervals count as one round) plus that publish is the critical path of the
  trigger: from "message handed over" to "trigger published".

Nothing here knows the engine or the store: the same probe measures any implementation that talks to
Firestore over gRPC and to Pub/Sub over REST through aiohttp.

The harness reads the counters on request: for each line it writes to this process's stdin, a thread
(blocked on stdin otherwise, so it costs nothing) answers with one JSON line on the file descriptor named by
BENCH_SNAPSHOT_FD. CPU is this process's user+system time from `getrusage` (all threads: grpc's included).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TextIO

TRIGGER_TOPICS_ENV = "BENCH_TRIGGER_TOPICS"  # comma-separated topic names whose publishes are triggers
SNAPSHOT_FD_ENV = "BENCH_SNAPSHOT_FD"  # where snapshots are written, one JSON line per request


@dataclass
class _Trace:
    """The requests made while handling one delivered message: [start, end] intervals (end None: open)."""

    intervals: list[list[float | None]] = field(default_factory=list)
    triggers: set[str] = field(default_factory=set)

    def begin(self) -> list[float | None]:
        interval: list[float | None] = [time.perf_counter(), None]
        self.intervals.append(interval)
        return interval

    def rounds(self) -> int:
        """Sequential rounds: intervals that overlap (concurrent requests) count once."""
        now = time.perf_counter()
        rounds, reach = 0, float("-inf")
        for start, end in sorted(self.intervals, key=lambda i: i[0] or 0.0):
            assert start is not None
            stop = now if end is None else end
            if start > reach:
                rounds += 1
                reach = stop
            else:
                reach = max(reach, stop)
        return rounds


_TRACE: ContextVar[_Trace | None] = ContextVar("bench_cost_trace", default=None)


@dataclass
class Counts:
    firestore: Counter[str] = field(default_factory=Counter)
    http: Counter[str] = field(default_factory=Counter)
    acked_messages: int = 0
    nacked_messages: int = 0
    handled_messages: int = 0
    # (trigger_id, topic, sequential rounds from "message handed over" up to and including the publish)
    critical_path: list[tuple[str, str, int]] = field(default_factory=list)
    untraced_triggers: int = 0  # trigger publishes outside a message handler (timers, startup)

    def snapshot(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "pid": os.getpid(),
            "monotonic": time.monotonic(),
            "cpu_user_s": usage.ru_utime,
            "cpu_sys_s": usage.ru_stime,
            "max_rss_kib": usage.ru_maxrss,
            "firestore": dict(self.firestore),
            "http": dict(self.http),
            "acked_messages": self.acked_messages,
            "nacked_messages": self.nacked_messages,
            "handled_messages": self.handled_messages,
            "critical_path": list(self.critical_path),
            "untraced_triggers": self.untraced_triggers,
        }


COUNTS = Counts()
_TRIGGER_TOPICS: frozenset[str] = frozenset()
_request_ids = itertools.count()


# --- message handlers -----------------------------------------------------------------------------------


Handler = Callable[[Any], Awaitable[object]]


def traced(handle: Handler) -> Handler:
    """`handle`, with a fresh trace per delivered message (requests made while handling it land there)."""

    async def handle_traced(received: Any) -> object:
        COUNTS.handled_messages += 1
        token = _TRACE.set(_Trace())
        try:
            return await handle(received)
        finally:
            _TRACE.reset(token)

    return handle_traced


@contextlib.contextmanager
def message_trace() -> Iterator[None]:
    """The same, for code that handles a message inline (the bare relay)."""
    COUNTS.handled_messages += 1
    token = _TRACE.set(_Trace())
    try:
        yield
    finally:
        _TRACE.reset(token)


def _trace_router_source() -> None:
    from adapters.pubsub import PubSubSource

    original = PubSubSource.run

    async def run(self: PubSubSource, handle: Handler) -> None:
        await original(self, traced(handle))

    PubSubSource.run = run  # type: ignore[method-assign]


# --- HTTP (Pub/Sub, BigQuery) through aiohttp --------------------------------------------------------------


def classify(method: str, path: str) -> tuple[str, str | None]:
    """(kind, topic) of a Google REST request; topic only for a publish."""
    if "/bigquery/" in path:
        return "bigquery." + (path.rsplit("/", 1)[-1] if method == "POST" else method.lower()), None
    action = path.rsplit(":", 1)[-1] if ":" in path.rsplit("/", 1)[-1] else None
    if action == "publish":
        topic = path.rsplit("/", 1)[-1].split(":", 1)[0]
        return ("pubsub.publish.trigger" if topic in _TRIGGER_TOPICS else "pubsub.publish.other"), topic
    if action in {"pull", "acknowledge", "modifyAckDeadline"}:
        return f"pubsub.{action}", None
    return f"other.{method.lower()}", None


async def _on_request_start(_session: Any, ctx: SimpleNamespace, params: Any) -> None:
    kind, topic = classify(params.method, params.url.path)
    COUNTS.http[kind] += 1
    ctx.kind, ctx.topic, ctx.body = kind, topic, []
    trace = _TRACE.get()
    ctx.trace = trace
    ctx.interval = trace.begin() if trace is not None else None
    # Counted when the publish starts: the rounds before it, plus itself.
    ctx.rounds = trace.rounds() if trace is not None and kind == "pubsub.publish.trigger" else None


async def _on_chunk_sent(_session: Any, ctx: SimpleNamespace, params: Any) -> None:
    if ctx.kind in {"pubsub.publish.trigger", "pubsub.acknowledge", "pubsub.modifyAckDeadline"}:
        ctx.body.append(params.chunk)


async def _on_request_done(_session: Any, ctx: SimpleNamespace, _params: Any) -> None:
    if ctx.interval is not None:
        ctx.interval[1] = time.perf_counter()
    if not ctx.body:
        return
    body = json.loads(b"".join(ctx.body))
    if ctx.kind == "pubsub.acknowledge":
        COUNTS.acked_messages += len(body.get("ackIds", ()))
    elif ctx.kind == "pubsub.modifyAckDeadline" and body.get("ackDeadlineSeconds") == 0:
        COUNTS.nacked_messages += len(body.get("ackIds", ()))
    elif ctx.kind == "pubsub.publish.trigger":
        messages = body.get("messages") or [{}]
        trigger_id = (messages[0].get("attributes") or {}).get("trigger_id") or f"#{next(_request_ids)}"
        if ctx.trace is None:
            COUNTS.untraced_triggers += 1
        elif trigger_id not in ctx.trace.triggers:
            ctx.trace.triggers.add(trigger_id)
            COUNTS.critical_path.append((trigger_id, ctx.topic, ctx.rounds))


def _counting_trace_config() -> Any:
    import aiohttp

    config = aiohttp.TraceConfig()
    config.on_request_start.append(_on_request_start)
    config.on_request_chunk_sent.append(_on_chunk_sent)
    config.on_request_end.append(_on_request_done)
    config.on_request_exception.append(_on_request_done)
    return config


def _count_http() -> None:
    import aiohttp

    original = aiohttp.ClientSession.__init__

    def init(self: aiohttp.ClientSession, *args: Any, trace_configs: Any = None, **kwargs: Any) -> None:
        configs = [*(trace_configs or ()), _counting_trace_config()]
        original(self, *args, trace_configs=configs, **kwargs)

    aiohttp.ClientSession.__init__ = init  # type: ignore[method-assign]


# --- gRPC (Firestore) -----------------------------------------------------------------------------------


class _CountingMultiCallable:
    """A grpc.aio multicallable that counts each call by method and times it on the message's trace."""

    def __init__(self, inner: Any, method: str) -> None:
        self._inner = inner
        self._name = method.rsplit("/", 1)[-1]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        COUNTS.firestore[self._name] += 1
        trace = _TRACE.get()
        call = self._inner(*args, **kwargs)
        if trace is None:
            return call
        interval = trace.begin()
        # The end of the RPC as its caller sees it: when the awaiter resumes with the answer (unary), when
        # the reader got its last message (stream). Not the done callback alone: an intercepted unary call
        # (the transport adds a logging interceptor) runs it a loop iteration late, and a reader that stops
        # after the document it wanted has moved on before the stream's status arrives.
        call.add_done_callback(lambda _call: _end(interval))
        return self._timed(call, interval)

    def _timed(self, call: Any, interval: list[float | None]) -> Any:
        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _end(interval: list[float | None]) -> None:
    if interval[1] is None:
        interval[1] = time.perf_counter()


class _TimedUnaryCall:
    """A unary call whose end is noted when its awaiter gets the answer; everything else is the call's."""

    def __init__(self, call: Any, interval: list[float | None]) -> None:
        self._call = call
        self._interval = interval

    def __await__(self) -> Any:
        try:
            return (yield from self._call.__await__())
        finally:
            _end(self._interval)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _CountingUnaryUnary(_CountingMultiCallable):
    def _timed(self, call: Any, interval: list[float | None]) -> Any:
        return _TimedUnaryCall(call, interval)


class _TimedStreamCall:
    """A server stream whose end is noted each time its reader receives a message."""

    def __init__(self, call: Any, interval: list[float | None]) -> None:
        self._call = call
        self._interval = interval

    async def _received(self) -> AsyncIterator[Any]:
        async for message in self._call:
            self._interval[1] = time.perf_counter()
            yield message
        self._interval[1] = time.perf_counter()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._received()

    async def read(self) -> Any:
        message = await self._call.read()
        self._interval[1] = time.perf_counter()
        return message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _CountingUnaryStream(_CountingMultiCallable):
    def _timed(self, call: Any, interval: list[float | None]) -> Any:
        return _TimedStreamCall(call, interval)


def _counting_channel(channel: Any) -> Any:
    kinds = {"unary_unary": _CountingUnaryUnary, "unary_stream": _CountingUnaryStream}
    for kind, proxy in kinds.items():
        make = getattr(channel, kind)

        def wrapped(method: str, *args: Any, _make: Any = make, _proxy: Any = proxy, **kwargs: Any) -> Any:
            return _proxy(_make(method, *args, **kwargs), method)

        setattr(channel, kind, wrapped)
    return channel


def _count_grpc() -> None:
    from grpc import aio  # type: ignore[import-untyped]  # no stubs in the venv (as in adapters/)

    # google.api_core picks its error wrapper by `isinstance` on the multicallable: keep the answers true.
    aio.UnaryUnaryMultiCallable.register(_CountingUnaryUnary)
    aio.UnaryStreamMultiCallable.register(_CountingUnaryStream)

    for factory in ("insecure_channel", "secure_channel"):
        original = getattr(aio, factory)

        def make(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            return _counting_channel(_original(*args, **kwargs))

        setattr(aio, factory, make)


# --- the snapshot channel and the entry point -----------------------------------------------------------


def _serve_snapshots(requests: Iterator[str], answers: TextIO) -> None:
    for _request in requests:
        text = "{}"
        for _ in range(5):  # a counter may grow while the loop's thread updates it: copy again
            try:
                text = json.dumps(COUNTS.snapshot())
                break
            except RuntimeError:
                continue
        answers.write(text + "\n")
        answers.flush()


def install(trigger_topics: frozenset[str], snapshot_fd: int | None) -> None:
    global _TRIGGER_TOPICS
    _TRIGGER_TOPICS = trigger_topics
    _count_http()
    _count_grpc()
    if snapshot_fd is not None:
        answers = os.fdopen(snapshot_fd, "w")
        threading.Thread(target=_serve_snapshots, args=(iter(sys.stdin), answers), daemon=True).start()


def main(argv: list[str]) -> int:
    topics = frozenset(t for t in os.environ.get(TRIGGER_TOPICS_ENV, "").split(",") if t)
    fd = os.environ.get(SNAPSHOT_FD_ENV)
    install(topics, int(fd) if fd else None)
    if argv[:1] == ["cascade"]:
        _trace_router_source()
        from ops.cli import main as cascade

        return cascade(["run", *argv[1:]])
    if argv[:1] == ["relay"]:
        from bench.relay import main as relay

        return relay()
    print("usage: python -m bench.cost_probe cascade|relay", file=sys.stderr)
    return 2


if __name__ == "__main__":
    # Run the imported module's `main`, not this `__main__` copy: the relay imports `bench.cost_probe`, and
    # both must share one set of counters and one context variable.
    from bench.cost_probe import main as probe_main

    raise SystemExit(probe_main(sys.argv[1:]))
