"""The HTTP surface on a loopback test server: probes, status, metrics and the guarded admin actions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from adapters.errors import TransientError
from ops.http import MAX_BODY_BYTES, AdminActions, make_app
from ops.metrics import Metrics
from router.keys import Key

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# What Cloud Run IAM puts in front of the router: a Google-signed JWT (the shape matters, not the signature).
GOOGLE_ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2Nhc2NhZGUifQ.c2lnbmF0dXJl"
TRANSITIONS = {"phase2_to_phase3", "phase3_to_phase4"}
KEY = Key(date(2025, 12, 30), "phase2_to_phase3")


@dataclass
class RecordingAdmin:
    """Records what was asked; `fail` makes the next action a transient failure (store unavailable)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail: bool = False

    async def reset_breaker(self, key: Key, operator: str) -> None:
        if self.fail:
            raise TransientError("state store unavailable")
        self.calls.append(("reset_breaker", key, operator))

    async def force_trigger(self, key: Key, operator: str, reason: str) -> None:
        if self.fail:
            raise TransientError("state store unavailable")
        self.calls.append(("force_trigger", key, operator, reason))


@dataclass
class Probes:
    healthy: bool = True
    ready: bool = True

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.healthy, {"ok": self.healthy, "seconds_since_tick": 1.0}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return self.ready, {"ok": self.ready, "reasons": [] if self.ready else ["pubsub is not connected"]}


STATUS: Mapping[str, Any] = {"since": "2025-12-29", "keys": [{"game_date": "2025-12-30", "state": "failed"}]}


async def serve(
    admin: AdminActions | None, token: str | None, probes: Probes | None = None
) -> tuple[TestClient[Any, Any], Metrics]:
    probes = probes or Probes()
    metrics = Metrics(CollectorRegistry())
    app = make_app(
        metrics,
        status_source=lambda: STATUS,
        health=probes.health,
        ready=probes.readiness,
        admin=admin,
        admin_token=token,
        known_transitions=lambda: set(TRANSITIONS),
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app))  # binds 127.0.0.1 on a free port
    await client.start_server()
    return client, metrics


@pytest.fixture
def admin() -> RecordingAdmin:
    return RecordingAdmin()


@pytest.fixture
async def client(admin: RecordingAdmin) -> AsyncIterator[TestClient[Any, Any]]:
    client, _ = await serve(admin, TOKEN)
    yield client
    await client.close()


async def test_metrics_are_served_in_a_parseable_text_format() -> None:
    client, metrics = await serve(None, None)
    try:
        metrics.duplicate()
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        (sample,) = families["cascade_duplicates_suppressed"].samples
        assert (sample.name, sample.value) == ("cascade_duplicates_suppressed_total", 1.0)
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("path", "up"), [("/healthz", True), ("/healthz", False), ("/readyz", True), ("/readyz", False)]
)
async def test_probes_answer_200_when_ok_and_503_with_the_body_when_not(path: str, up: bool) -> None:
    probes = Probes(healthy=up, ready=up)
    client, _ = await serve(None, None, probes)
    try:
        response = await client.get(path)
        assert response.status == (200 if up else 503)
        assert (await response.json())["ok"] is up
    finally:
        await client.close()


async def test_status_serves_the_source_as_json(client: TestClient[Any, Any]) -> None:
    response = await client.get("/status")
    assert response.status == 200
    assert await response.json() == STATUS


async def test_reset_breaker_with_the_token_calls_the_engine(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    response = await client.post(
        "/admin/breakers/phase2_to_phase3/2025-12-30/reset", json={"operator": "alice"}, headers=AUTH
    )
    assert response.status == 200
    assert (await response.json())["action"] == "reset_breaker"
    assert admin.calls == [("reset_breaker", KEY, "alice")]


async def test_force_trigger_with_the_token_passes_operator_and_reason(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    response = await client.post(
        "/admin/triggers/phase2_to_phase3/2025-12-30",
        json={"operator": "alice", "reason": "gamebook scraper down, data checked by hand"},
        headers=AUTH,
    )
    assert response.status == 200
    assert (await response.json())["source"] == "manual"
    assert admin.calls == [("force_trigger", KEY, "alice", "gamebook scraper down, data checked by hand")]


ADMIN_CALLS = [
    ("/admin/breakers/phase2_to_phase3/2025-12-30/reset", {"operator": "mallory"}),
    ("/admin/triggers/phase2_to_phase3/2025-12-30", {"operator": "mallory", "reason": "because"}),
]
BAD_CREDENTIALS = [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer tökén"},  # non-ASCII must be a 401, not a 500
    {"X-Cascade-Admin-Token": "wrong-token"},
    {"X-Cascade-Admin-Token": f"Bearer {TOKEN}"},  # the header holds the bare token
    {"X-Cascade-Admin-Token": "tökén"},
    {"Authorization": f"Bearer {GOOGLE_ID_TOKEN}", "X-Cascade-Admin-Token": "wrong-token"},
    # X-Serverless-Authorization belongs to Cloud Run (the caller's identity token), never to the router.
    {"X-Serverless-Authorization": f"Bearer {TOKEN}"},
]
# Any header way of presenting the admin token that the router accepts (ops/http.py, module docstring).
GOOD_CREDENTIALS = [
    pytest.param(AUTH, id="authorization-bearer"),
    pytest.param({"X-Cascade-Admin-Token": TOKEN}, id="x-cascade-admin-token"),
    # Cloud Run IAM, identity token in Authorization: the admin token goes in X-Cascade-Admin-Token.
    pytest.param(
        {"Authorization": f"Bearer {GOOGLE_ID_TOKEN}", "X-Cascade-Admin-Token": TOKEN},
        id="iam-in-authorization",
    ),
    # Cloud Run IAM, identity token in X-Serverless-Authorization: the admin token stays in Authorization.
    pytest.param(
        {"X-Serverless-Authorization": f"Bearer {GOOGLE_ID_TOKEN}", **AUTH},
        id="iam-in-x-serverless-authorization",
    ),
    # A wrong token in one header does not veto the right one in the other.
    pytest.param(
        {"Authorization": "Bearer wrong-token", "X-Cascade-Admin-Token": TOKEN}, id="right-in-either"
    ),
]


@pytest.mark.parametrize("headers", GOOD_CREDENTIALS)
async def test_the_admin_token_is_accepted_in_authorization_or_x_cascade_admin_token(
    client: TestClient[Any, Any], admin: RecordingAdmin, headers: dict[str, str]
) -> None:
    response = await client.post(
        "/admin/breakers/phase2_to_phase3/2025-12-30/reset", json={"operator": "alice"}, headers=headers
    )
    assert response.status == 200
    assert admin.calls == [("reset_breaker", KEY, "alice")]


@pytest.mark.parametrize("headers", BAD_CREDENTIALS)
@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
async def test_admin_without_a_valid_token_is_401_and_changes_nothing(
    client: TestClient[Any, Any],
    admin: RecordingAdmin,
    path: str,
    body: dict[str, str],
    headers: dict[str, str],
) -> None:
    response = await client.post(path, json=body, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert admin.calls == []


async def test_unauthenticated_callers_learn_nothing_about_transitions(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    response = await client.post("/admin/triggers/no_such_transition/not-a-date", json={})
    assert response.status == 401
    assert admin.calls == []


@pytest.mark.parametrize("token", [None, ""])
@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
async def test_admin_is_disabled_with_403_when_no_token_is_configured(
    admin: RecordingAdmin, token: str | None, path: str, body: dict[str, str]
) -> None:
    client, _ = await serve(admin, token)
    try:
        # Even a caller who sends the empty "token" must not get through.
        response = await client.post(path, json=body, headers={"Authorization": "Bearer "})
        assert response.status == 403
        assert "admin disabled" in (await response.json())["error"]
        assert admin.calls == []
    finally:
        await client.close()


async def test_admin_is_disabled_when_no_actions_are_wired() -> None:
    client, _ = await serve(None, TOKEN)
    try:
        response = await client.post(ADMIN_CALLS[0][0], json=ADMIN_CALLS[0][1], headers=AUTH)
        assert response.status == 403
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/admin/triggers/phase9_to_phase10/2025-12-30",
            {"operator": "a", "reason": "r"},
            "unknown transition",
        ),
        ("/admin/triggers/phase2_to_phase3/20251230", {"operator": "a", "reason": "r"}, "not YYYY-MM-DD"),
        ("/admin/triggers/phase2_to_phase3/2025-02-30", {"operator": "a", "reason": "r"}, "not a date"),
        ("/admin/breakers/phase2_to_phase3/30-12-2025/reset", {"operator": "a"}, "not YYYY-MM-DD"),
        ("/admin/triggers/phase2_to_phase3/2025-12-30", {"operator": "a"}, "'reason' is required"),
        (
            "/admin/triggers/phase2_to_phase3/2025-12-30",
            {"operator": " ", "reason": "r"},
            "'operator' is required",
        ),
        ("/admin/breakers/phase2_to_phase3/2025-12-30/reset", {}, "'operator' is required"),
        ("/admin/breakers/phase2_to_phase3/2025-12-30/reset", ["alice"], "must be a JSON object"),
        (
            "/admin/triggers/phase2_to_phase3/2025-12-30",
            {"operator": "a", "reason": "r" * 2001},
            "longer than",
        ),
    ],
)
async def test_bad_admin_requests_are_400_with_a_message_and_change_nothing(
    client: TestClient[Any, Any], admin: RecordingAdmin, path: str, body: Any, message: str
) -> None:
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status == 400
    assert message in (await response.json())["error"]
    assert admin.calls == []


async def test_a_body_that_is_not_json_is_400(client: TestClient[Any, Any], admin: RecordingAdmin) -> None:
    response = await client.post(ADMIN_CALLS[0][0], data=b"operator=alice", headers=AUTH)
    assert response.status == 400
    assert "not JSON" in (await response.json())["error"]
    assert admin.calls == []


async def test_a_transient_backend_failure_is_503_so_the_operator_retries(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    admin.fail = True
    response = await client.post(ADMIN_CALLS[1][0], json=ADMIN_CALLS[1][1], headers=AUTH)
    assert response.status == 503
    assert "try again" in (await response.json())["error"]


async def test_admin_routes_accept_only_post(client: TestClient[Any, Any], admin: RecordingAdmin) -> None:
    response = await client.get(ADMIN_CALLS[0][0], headers=AUTH)
    assert response.status == 405
    assert admin.calls == []


async def test_a_body_over_the_limit_is_413_unread_and_changes_nothing(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    body = {"operator": "alice", "reason": "r", "padding": "x" * MAX_BODY_BYTES}
    response = await client.post(ADMIN_CALLS[1][0], json=body, headers=AUTH)
    assert response.status == 413
    assert "larger than 16384 bytes" in (await response.json())["error"]
    assert admin.calls == []


async def test_a_chunked_body_over_the_limit_is_413_and_changes_nothing(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit is found while reading
        yield b'{"operator": "alice", "reason": "r", "padding": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(ADMIN_CALLS[1][0], data=chunks(), headers=AUTH)
    assert response.status == 413
    assert admin.calls == []


async def test_a_body_just_under_the_limit_is_read_whole(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    body = {"operator": "alice", "reason": "r", "padding": ""}
    body["padding"] = "x" * (MAX_BODY_BYTES - len(json.dumps(body)))
    assert len(json.dumps(body)) == MAX_BODY_BYTES
    response = await client.post(ADMIN_CALLS[1][0], data=json.dumps(body).encode(), headers=AUTH)
    assert response.status == 200
    assert len(admin.calls) == 1


@pytest.mark.parametrize(
    "data",
    [b"[" * 8_000 + b"]" * 8_000, b'{"operator": "\xff\xfe"}', b'{"operator": NaN'],
    ids=["nested-8k", "invalid-utf8", "truncated"],
)
async def test_a_hostile_body_is_400_not_a_server_error_and_changes_nothing(
    client: TestClient[Any, Any], admin: RecordingAdmin, data: bytes
) -> None:
    # Was: 8k nested lists (16 KB) raised RecursionError out of json.loads, a 500 with a traceback.
    response = await client.post(ADMIN_CALLS[0][0], data=data, headers=AUTH)
    assert response.status == 400
    assert "not JSON" in (await response.json())["error"]
    assert admin.calls == []


async def test_a_token_header_that_is_not_utf8_is_401_not_a_server_error(
    client: TestClient[Any, Any], admin: RecordingAdmin
) -> None:
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"POST {ADMIN_CALLS[0][0]} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n".encode()
        + b"Authorization: Bearer \xff\xfe"
        + TOKEN.encode()
        + b"\r\nConnection: close\r\n\r\n{}"
    )
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"401"
    assert admin.calls == []
