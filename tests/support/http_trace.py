"""Counting the HTTP requests a client makes, by kind, with an aiohttp `TraceConfig` (no wrapper needed)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import aiohttp


def request_kind(path: str) -> str:
    """`/v1/projects/p/subscriptions/s:acknowledge` → `acknowledge`; a path without a verb: its last part."""
    last = path.rstrip("/").rpartition("/")[2]
    return last.rpartition(":")[2]


def counting_session(counts: Counter[str]) -> aiohttp.ClientSession:
    """A new session that adds one to `counts[kind]` for every request it starts (see `request_kind`)."""

    async def on_request_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        counts[request_kind(params.url.path)] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return aiohttp.ClientSession(trace_configs=[trace])
