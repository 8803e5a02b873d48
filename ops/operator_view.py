"""The daemon's operator view: boards, explanations and SLOs of the recent dates, as JSON (and HTML pages).

Reads the rows the engine's date watch keeps (recent dates, seeded at start from the audit tables), so the
daemon answers from the same rows `cascade explain --bigquery` would read, with the same view functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from adapters.clock import Clock
from ops.day_watch import DayWatch
from policies.model import Policy
from views.board import DayBoard, day_board
from views.explain import explain
from views.history import DayHistory, by_date
from views.render import board_json, slo_report_of

Json = dict[str, Any]


class OperatorView:
    def __init__(self, watch: DayWatch, policy: Callable[[], Policy], clock: Clock, recent_days: int) -> None:
        self._watch, self._policy, self._clock = watch, policy, clock
        self.recent_days = recent_days

    def now(self) -> datetime:
        return self._clock.now()

    def days(self) -> list[DayHistory]:
        """The recent dates, newest first."""
        since = self._clock.now().date() - timedelta(days=self.recent_days)
        rows = [row for day, kept in self._watch.rows.items() if day >= since for row in kept]
        return sorted(by_date(rows).values(), key=lambda d: d.game_date, reverse=True)

    def day(self, game_date: date) -> DayHistory | None:
        kept = self._watch.rows.get(game_date)
        return by_date(kept).get(game_date) if kept else None

    def board(self, day: DayHistory) -> DayBoard:
        return day_board(day, self._policy(), self._clock.now(), self._watch.book)

    def boards_json(self) -> Json:
        return {"dates": [board_json(self.board(day)) for day in self.days()]}

    def board_json(self, game_date: date) -> Json | None:
        day = self.day(game_date)
        return None if day is None else {"dates": [board_json(self.board(day))]}

    def explain_json(self, game_date: date, transition: str | None) -> Json | None:
        day = self.day(game_date)
        if day is None:
            return None
        return explain(day, self._policy(), self._watch.book, transition)

    def slo_json(self, days: int) -> Json:
        return slo_report_of(self._watch.slo_rows, self._policy(), self._clock.now().date(), days)

    def not_kept(self, game_date: date) -> str:
        return (
            f"{game_date} is not among the dates this instance keeps (the last {self.recent_days} days); "
            f"ask the audit tables: cascade explain {game_date} --bigquery"
        )
