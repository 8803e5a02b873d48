"""The operator's routes: the dashboard pages and the JSON behind `cascade status | explain | slo --url`.

Read-only: nothing here changes routing (the admin actions live in `ops.http`, behind the admin token).

    GET /                      recent dates, one row each (HTML)
    GET /dates/{game_date}     one date's board and full decision history (HTML)
    GET /board                 the recent dates' boards (JSON)
    GET /board/{game_date}     one date's board (JSON)
    GET /explain/{game_date}   why it did or did not trigger (JSON; ?transition=...)
    GET /slo                   SLO compliance and per-date outcomes (JSON; ?days=30)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from aiohttp import web

from ops.operator_view import OperatorView

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
PAGE_REFRESH_S = 30
MAX_SLO_DAYS = 365


class _BadRequest(ValueError):
    pass


def add_view_routes(app: web.Application, view: OperatorView, transitions: Callable[[], set[str]]) -> None:
    async def get_boards(request: web.Request) -> web.Response:
        return web.json_response(view.boards_json())

    async def get_board(request: web.Request) -> web.Response:
        day = _date(request)
        body = view.board_json(day)
        return web.json_response(body) if body is not None else _not_kept(view, day)

    async def get_explain(request: web.Request) -> web.Response:
        day = _date(request)
        transition = request.query.get("transition")
        if transition is not None and transition not in transitions():
            raise _BadRequest(f"unknown transition {transition!r}; known: {sorted(transitions())}")
        body = view.explain_json(day, transition)
        return web.json_response(body) if body is not None else _not_kept(view, day)

    async def get_slo(request: web.Request) -> web.Response:
        return web.json_response(view.slo_json(_days(request)))

    async def get_index(request: web.Request) -> web.Response:
        from ops.web import render_index

        boards = [view.board(day) for day in view.days()]
        return _html(render_index(boards, view.now(), PAGE_REFRESH_S))

    async def get_date_page(request: web.Request) -> web.Response:
        from ops.web import render_date

        day = _date(request)
        history = view.day(day)
        if history is None:
            return web.Response(status=404, text=view.not_kept(day), content_type="text/plain")
        return _html(render_date(view.board(history), history, PAGE_REFRESH_S))

    app.router.add_get("/", _guard(get_index))
    app.router.add_get("/dates/{game_date}", _guard(get_date_page))
    app.router.add_get("/board", _guard(get_boards))
    app.router.add_get("/board/{game_date}", _guard(get_board))
    app.router.add_get("/explain/{game_date}", _guard(get_explain))
    app.router.add_get("/slo", _guard(get_slo))


Handler = Callable[[web.Request], Any]


def _guard(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
        except _BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return response

    return guarded


def _html(text: str) -> web.Response:
    # The pages refresh themselves and show live state: never cached by a proxy.
    return web.Response(text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


def _not_kept(view: OperatorView, day: date) -> web.Response:
    return web.json_response({"error": view.not_kept(day)}, status=404)


def _date(request: web.Request) -> date:
    text = request.match_info["game_date"]
    if not _DATE.fullmatch(text):
        raise _BadRequest(f"game_date {text!r} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise _BadRequest(f"game_date {text!r} is not a date: {exc}") from exc


def _days(request: web.Request) -> int:
    text = request.query.get("days", "30")
    if not text.isdigit() or not 1 <= int(text) <= MAX_SLO_DAYS:
        raise _BadRequest(f"days must be a whole number from 1 to {MAX_SLO_DAYS}, not {text!r}")
    return int(text)
