"""The daemon's HTTP surface: /metrics, /healthz, /readyz, /status, two operator actions, and the operator's
view (`ops.http_views`: the dashboard pages and their JSON).

The app only reads through the callables it is given and acts through `AdminActions`; it owns no state, so
tests build it with fakes and the composition root with the engine.

Admin actions are refused with **403 "admin disabled"** when no token is configured (rather than 404): the
route exists, the request is understood, and no credentials would help — a 404 would send an operator
looking for a typo, a 401 would invite retrying with a token. An empty token counts as not configured.
Authentication is checked before anything else about the request, so an unauthenticated caller learns
nothing (not even which transitions exist) and changes nothing.

The admin token is accepted in `Authorization: Bearer <token>` or in `X-Cascade-Admin-Token: <token>`. The
second is for callers whose `Authorization` header already carries another credential: behind Cloud Run IAM
the caller's Google identity token goes either in `Authorization` (then the admin token goes in
`X-Cascade-Admin-Token`) or in `X-Serverless-Authorization`, which Cloud Run checks first (then the admin
token may stay in `Authorization`).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any, Protocol

from aiohttp import web

from adapters.errors import TransientError
from ops.http_views import add_view_routes
from ops.metrics import CONTENT_TYPE, Metrics
from ops.operator_view import OperatorView
from router.keys import Key

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_OPERATOR_CHARS = 200
MAX_REASON_CHARS = 2000
# An admin body is an operator name and a reason (~2 KB at most); larger is refused with 413 before it is
# parsed, whether or not the caller declared its length.
MAX_BODY_BYTES = 16 * 1024
ADMIN_TOKEN_HEADER = "X-Cascade-Admin-Token"


class AdminActions(Protocol):
    async def reset_breaker(self, key: Key, operator: str) -> None: ...

    async def force_trigger(self, key: Key, operator: str, reason: str) -> None: ...


Probe = Callable[[], tuple[bool, dict[str, Any]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(ValueError):
    """A path or body value the admin routes cannot use; the message goes back to the caller."""


class BodyTooLarge(BadRequest):
    """The body is over `MAX_BODY_BYTES` (413)."""


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def make_app(
    metrics: Metrics,
    status_source: Callable[[], Mapping[str, Any]],
    health: Probe,
    ready: Probe,
    admin: AdminActions | None,
    admin_token: str | None,
    known_transitions: Callable[[], set[str]],
    view: OperatorView | None = None,
) -> web.Application:
    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    def probe(check: Probe) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            ok, body = check()
            return web.json_response(body, status=200 if ok else 503)

        return handler

    async def get_status(request: web.Request) -> web.Response:
        return web.json_response(status_source())

    def guarded(action: Callable[[Key, dict[str, Any]], Awaitable[dict[str, Any]]]) -> Handler:
        """Disabled → 403, bad credentials → 401, body too large → 413, bad input → 400, backend unavailable
        → 503. Every refusal is decided before the action runs, so it changes nothing."""

        async def handler(request: web.Request) -> web.Response:
            if admin is None or not admin_token:
                return _error(403, "admin disabled: no admin token is configured for this instance")
            if not _authorized(request, admin_token):
                headers = {"WWW-Authenticate": 'Bearer realm="cascade-admin"'}
                return _error(
                    401,
                    f"the admin token is required: Authorization: Bearer, or {ADMIN_TOKEN_HEADER}",
                    headers,
                )
            try:
                key = _key(request, known_transitions())
                body = await _json_body(request)
                result = await action(key, body)
            except BodyTooLarge as exc:
                return _error(413, str(exc))
            except BadRequest as exc:
                return _error(400, str(exc))
            except TransientError as exc:
                return _error(503, f"not done, try again: {exc}")
            return web.json_response(
                {"ok": True, "game_date": key.game_date.isoformat(), "transition": key.transition, **result}
            )

        return handler

    async def reset(key: Key, body: dict[str, Any]) -> dict[str, Any]:
        assert admin is not None
        operator = _text(body, "operator", MAX_OPERATOR_CHARS)
        await admin.reset_breaker(key, operator)
        return {"action": "reset_breaker", "operator": operator}

    async def force(key: Key, body: dict[str, Any]) -> dict[str, Any]:
        assert admin is not None
        operator = _text(body, "operator", MAX_OPERATOR_CHARS)
        reason = _text(body, "reason", MAX_REASON_CHARS)
        await admin.force_trigger(key, operator, reason)
        return {"action": "force_trigger", "operator": operator, "source": "manual"}

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", probe(health))
    app.router.add_get("/readyz", probe(ready))
    app.router.add_get("/status", get_status)
    app.router.add_post("/admin/breakers/{transition}/{game_date}/reset", guarded(reset))
    app.router.add_post("/admin/triggers/{transition}/{game_date}", guarded(force))
    if view is not None:
        add_view_routes(app, view, known_transitions)
    return app


def _authorized(request: web.Request, token: str) -> bool:
    """The token in either header is enough: a Google identity token in `Authorization` (Cloud Run IAM) must
    not hide a right `X-Cascade-Admin-Token`."""
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    presented = [request.headers.get(ADMIN_TOKEN_HEADER)]
    if scheme.lower() == "bearer":
        presented.append(bearer)
    # Both compared, each in constant time, on bytes: compare_digest refuses non-ASCII str, and a caller may
    # send anything (header bytes that are not UTF-8 reach us as surrogates: surrogatepass encodes them
    # instead of raising).
    expected = token.encode()
    matches = [
        hmac.compare_digest(value.strip().encode("utf-8", "surrogatepass"), expected)
        for value in presented
        if value is not None
    ]
    return any(matches)


def _key(request: web.Request, transitions: set[str]) -> Key:
    transition, text = request.match_info["transition"], request.match_info["game_date"]
    if transition not in transitions:
        raise BadRequest(f"unknown transition {transition!r}; known: {sorted(transitions)}")
    # fullmatch first: date.fromisoformat also takes forms like 20251230 since Python 3.11.
    if not _DATE.fullmatch(text):
        raise BadRequest(f"game_date {text!r} is not YYYY-MM-DD")
    try:
        return Key(date.fromisoformat(text), transition)
    except ValueError as exc:
        raise BadRequest(f"game_date {text!r} is not a date: {exc}") from exc


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await _bounded_body(request)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested beyond the parser's stack
        raise BadRequest(f"the body is not JSON: {type(exc).__name__}: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


async def _bounded_body(request: web.Request) -> bytes:
    """At most `MAX_BODY_BYTES`: a declared length over it is refused unread, a chunked body as soon as
    it passes it."""
    too_large = f"the body is larger than {MAX_BODY_BYTES} bytes"
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise BodyTooLarge(too_large)
    raw = bytearray()
    while len(raw) <= MAX_BODY_BYTES:
        chunk = await request.content.read(MAX_BODY_BYTES + 1 - len(raw))
        if not chunk:
            return bytes(raw)
        raw += chunk
    raise BodyTooLarge(too_large)


def _text(body: Mapping[str, Any], field: str, max_chars: int) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field!r} is required: a non-empty string")
    if len(value) > max_chars:
        raise BadRequest(f"{field!r} is longer than {max_chars} characters")
    return value.strip()
