"""`cascade replay --report FILE.html`: every date of a replay in one self-contained HTML file.

Each date's board is built as the live page would have shown it at the end of the replay, with its ETA from
the dates before it only (what was known then), never from itself or later dates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ops.web import render_report
from policies.model import Policy
from views.board import DayBoard, day_board
from views.eta import DurationBook
from views.history import DayHistory, by_date, parse_time


def write_report(
    rows: Iterable[Mapping[str, Any]],
    policy: Policy,
    path: Path,
    now: datetime | None = None,
    title: str | None = None,
) -> int:
    """Write the report of `rows` (audit rows) to `path`; `now` is the end of the replay (None: the time of
    the last row). Returns how many dates it holds."""
    rows = list(rows)
    pairs = date_boards(rows, policy, now if now is not None else _last_time(rows))
    first, last = (pairs[0][0].game_date, pairs[-1][0].game_date) if pairs else (None, None)
    path.write_text(render_report(pairs, title or _title(first, last, len(pairs))), encoding="utf-8")
    return len(pairs)


def date_boards(
    rows: Iterable[Mapping[str, Any]], policy: Policy, now: datetime
) -> list[tuple[DayBoard, DayHistory]]:
    """Every date of `rows` with its board as of `now`, oldest first. One duration book over all the rows:
    it answers each date from the dates before it only."""
    rows = list(rows)
    days = by_date(rows)
    book = DurationBook.for_policy(policy, rows)
    return [(day_board(days[d], policy, now, book), days[d]) for d in sorted(days)]


def _last_time(rows: list[Mapping[str, Any]]) -> datetime:
    times = [parse_time(str(row["at"])) for row in rows if row.get("at")]
    if not times:
        raise ValueError("no audit row with a time: nothing to report")
    return max(times)


def _title(first: date | None, last: date | None, count: int) -> str:
    if first is None:
        return "cascade replay: no dates"
    span = f"{first}" if first == last else f"{first} to {last}"
    return f"cascade replay: {span} ({count} date{'s' if count != 1 else ''})"
