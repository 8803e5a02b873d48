"""Subscriptions never expire: created so on the emulator, and an existing one that would expire is patched.

The Pub/Sub emulator refuses every update of `expirationPolicy` (HTTP 400, "currently unsupported in the
Pub/Sub Emulator"), so the patch itself is held against a scripted stand-in that keeps what real Pub/Sub
documents: a subscription created without a policy reports the 31-day default `{"ttl": "2678400s"}`, and a
PATCH with `updateMask=expirationPolicy` replaces it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from adapters.pubsub_admin import PubSubAdmin
from tests.support.emulators import Emulator

THIRTY_ONE_DAYS = {"ttl": "2678400s"}


@asynccontextmanager
async def scripted_subscription(policy: dict[str, Any]) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """One subscription `projects/p/subscriptions/s` with expiration `policy`. Yields (api_root, patches)."""
    stored = {
        "name": "projects/p/subscriptions/s",
        "topic": "projects/p/topics/t",
        "expirationPolicy": policy,
    }
    patches: list[dict[str, Any]] = []

    async def get(request: web.Request) -> web.Response:
        return web.json_response(stored)

    async def patch(request: web.Request) -> web.Response:
        body = await request.json()
        patches.append(body)
        for field in body["updateMask"].split(","):
            stored[field] = body["subscription"][field]
        return web.json_response(stored)

    app = web.Application()
    app.router.add_get("/v1/projects/p/subscriptions/s", get)
    app.router.add_patch("/v1/projects/p/subscriptions/s", patch)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", patches
    finally:
        await runner.cleanup()


async def test_a_subscription_with_the_default_31_day_expiry_is_patched_to_never_expire_once() -> None:
    async with (
        scripted_subscription(THIRTY_ONE_DAYS) as (api_root, patches),
        aiohttp.ClientSession() as session,
    ):
        admin = PubSubAdmin("p", session, api_root)
        assert await admin.ensure_never_expires("s") is True
        assert await admin.ensure_never_expires("s") is False  # converged: nothing more to change
    assert patches == [{"subscription": {"expirationPolicy": {}}, "updateMask": "expirationPolicy"}]


@pytest.mark.emulator
async def test_a_subscription_provisioned_on_the_emulator_needs_no_patch(pubsub_server: Emulator) -> None:
    project = f"expiry-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession() as session:
        admin = PubSubAdmin(project, session, f"http://{pubsub_server.host_port}/v1")
        await admin.ensure_topic("topic-a")
        assert await admin.ensure_subscription("sub-a", "topic-a") is True
        assert await admin.ensure_never_expires("sub-a") is False
