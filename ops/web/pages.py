"""Server-rendered HTML of the day board: the daemon's live pages and the self-contained replay report.

The pages only read: no forms, no buttons that change anything (operator commands stay on the authenticated
admin API). Everything they show comes from `views` models; the templates only lay it out. Autoescape is on,
so processor names, messages and reasons from the wire are always text, never markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined

from ops.web import present
from views.board import DayBoard, local_text
from views.history import DayHistory


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ops.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt field is an error in the tests, not a blank cell at 3 AM
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        css=_stylesheet(),
        deadline_tone=present.deadline_tone,
        focus=present.focus,
        is_done=present.is_done,
        is_quiet=present.is_quiet,
        latest_next_step=present.latest_next_step,
        state_text=present.state_text,
        with_changes=present.with_changes,
        zone_of=present.zone_of,
    )
    env.filters.update(
        clock=present.local_clock,
        day=present.local_day,
        iso=present.iso_z,
        local=local_text,
        pct=present.percent,
        relative=present.relative,
        score=present.score,
        short=present.short_label,
        utc=present.utc_text,
    )
    return env


@cache
def _stylesheet() -> str:
    # Inlined in every page: the report must be one file, and the live pages then need no static route
    # (and keep working behind any proxy prefix).
    return (resources.files("ops.web") / "static" / "cascade.css").read_text(encoding="utf-8")


def render_index(boards: Sequence[DayBoard], now: datetime, refresh_s: int | None) -> str:
    """Recent dates, newest first, one row each, linking to `dates/{game_date}` (relative to the page)."""
    ordered = sorted(boards, key=lambda b: b.game_date, reverse=True)
    return _environment().get_template("index.html").render(boards=ordered, now=now, refresh_s=refresh_s)


def render_date(board: DayBoard, day: DayHistory, refresh_s: int | None) -> str:
    """One date: the board, then every decision, trigger and alert it recorded."""
    return _environment().get_template("date.html").render(board=board, day=day, refresh_s=refresh_s)


def render_report(boards_and_days: Sequence[tuple[DayBoard, DayHistory]], title: str) -> str:
    """Every date in one self-contained file (no scripts, no external requests): an index, then each date."""
    ordered = sorted(boards_and_days, key=lambda pair: pair[0].game_date)
    return _environment().get_template("report.html").render(pairs=ordered, title=title, refresh_s=None)
