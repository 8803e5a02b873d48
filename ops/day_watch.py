"""The engine's view of whole dates: every audit row it writes goes through here.

Keeps, per game date, its pulse (`views.pulse`) and watch flags, the transition durations for ETAs, the SLO
rows of the rolling window, and (in the daemon) the recent rows themselves, which the pages and
`GET /explain` read. `views.watch` decides what to raise; the engine sends it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache

from adapters.ports import AuditRow
from policies.model import Policy
from router.state import DateState
from views.eta import DurationBook
from views.history import parse_time
from views.pulse import DatePulse
from views.slo import ended_at
from views.watch import Verdict, WatchFlags, assess, next_due

# Rows that always change a date's outlook (alerts and SLO rows are the watch's own output).
_SHAPING_KINDS = frozenset({"trigger", "phase_completion"})


def _learn(pulse: DatePulse, states: list[DateState]) -> None:
    for state in states:
        published = state.published
        pulse.learn(
            state.key.transition,
            published.published_at if published is not None else None,
            published.source.value if published is not None and published.source else None,
            state.last_input_at,
        )


@lru_cache(maxsize=4096)
def _game_date(text: str) -> date:
    return date.fromisoformat(text)


def _shape(pulse: DatePulse, row: AuditRow) -> tuple[bool, bool]:
    """(mode pinned, the row's transition open): what an input or a check can change about the outlook."""
    part = pulse.transitions.get(str(row.get("transition")))
    return pulse.mode is not None, part is not None and part.opened_at is not None


class DayWatch:
    def __init__(
        self,
        policy: Policy,
        keep_rows: bool = False,
        states_of: Callable[[date], list[DateState]] | None = None,
    ) -> None:
        self.book = DurationBook.for_policy(policy)
        self.pulses: dict[date, DatePulse] = {}
        self.flags: dict[date, WatchFlags] = {}
        self.slo_rows: list[AuditRow] = []
        self.rows: defaultdict[date, list[AuditRow]] = defaultdict(list)
        self._keep_rows = keep_rows
        # Several instances (a rollout): each writes only its own rows, so before judging a date the daemon's
        # watch also reads what its router state learnt from the shared record (None in replay: one writer).
        self._states_of = states_of
        # When each open date could next be found stuck (asked after every event: kept, not recomputed).
        self._due: dict[date, datetime] = {}

    def seed(self, rows: Iterable[AuditRow]) -> None:
        """History from before this process (the audit tables): pages, durations and SLO rows. What that
        history already raised (at risk, stuck, ended) is not raised again."""
        alerts = []
        for row in rows:
            self._take(row)
            if row["kind"] == "alert" and row.get("game_date"):
                alerts.append(row)
        ended = {r["game_date"] for r in self.slo_rows}
        for day in self.pulses:
            self.flags.setdefault(day, WatchFlags(ended=day.isoformat() in ended))
        for row in alerts:
            self._remember_raised(row)

    def _remember_raised(self, alert: AuditRow) -> None:
        day = date.fromisoformat(str(alert["game_date"]))
        pulse, flags = self.pulses.get(day), self._flags(day)
        if alert["alert"] == "slo_at_risk":
            flags.at_risk = True
        elif alert["alert"] == "pipeline_stuck" and pulse is not None:
            progress = pulse.last_progress_at
            if progress is not None and parse_time(alert["at"]) >= progress:
                flags.stuck_since = progress

    def observe(self, rows: Sequence[AuditRow], now: datetime, policy: Policy) -> list[Verdict]:
        touched = {day for day in (self._take(row) for row in rows) if day is not None}
        return self._assess_all(sorted(touched), now, policy)

    def due(self, now: datetime, policy: Policy) -> list[Verdict]:
        """Dates whose stuck threshold passed, or whose ETA just passed the SLO deadline."""
        return self._assess_all(sorted(d for d, at in self._due.items() if at <= now), now, policy)

    def sweep(self, now: datetime, policy: Policy) -> list[Verdict]:
        """Every open date (the daemon, every minute: an ETA moves with time, not only with rows)."""
        return self._assess_all(sorted(d for d in self.pulses if not self._flags(d).ended), now, policy)

    def next_due(self, policy: Policy) -> datetime | None:
        return min(self._due.values(), default=None)

    def _assess_all(self, days: list[date], now: datetime, policy: Policy) -> list[Verdict]:
        verdicts = []
        for day in days:
            pulse, flags = self.pulses[day], self._flags(day)
            if self._states_of is not None:
                own_end = ended_at(pulse, policy)
                _learn(pulse, self._states_of(day))
                if own_end is None and ended_at(pulse, policy) is not None:
                    flags.ended = True  # ended by another instance's trigger: that one reports the date
            verdict = assess(pulse, flags, policy, self.book, now)
            due = next_due(pulse, flags, policy, self.book, now)
            if due is None:
                self._due.pop(day, None)
            else:
                self._due[day] = due
            if verdict.alerts or verdict.slo_row:
                verdicts.append(verdict)
        return verdicts

    def at_risk(self) -> int:
        return sum(1 for f in self.flags.values() if f.at_risk and not f.ended)

    def forget(self, before: date) -> None:
        """Bound memory: dates before `before` leave (durations and SLO rows keep their own windows)."""
        for day in [d for d in self.pulses if d < before]:
            self.pulses.pop(day, None)
            self.flags.pop(day, None)
            self.rows.pop(day, None)
            self._due.pop(day, None)

    def trim(self, policy: Policy, today: date) -> None:
        spec = policy.slo
        self.book.forget(today - timedelta(days=spec.eta_history_days + 1))
        horizon = (today - timedelta(days=spec.window_days + 1)).isoformat()
        self.slo_rows = [r for r in self.slo_rows if r["game_date"] >= horizon]

    def _take(self, row: AuditRow) -> date | None:
        text = row.get("game_date")
        if not text:
            return None
        day = _game_date(str(text))
        kind = row["kind"]
        if self._keep_rows:
            self.rows[day].append(row)
        if kind == "slo":
            self.slo_rows.append(row)
            return None
        if kind == "phase_completion":
            self.book.add(row)
        pulse = self.pulses.get(day)
        if pulse is None:
            pulse = self.pulses[day] = DatePulse(day)
        shape = _shape(pulse, row)
        pulse.absorb(row)
        # Assessed when the date's outlook changed shape: a transition opened or triggered or ended, the mode
        # was pinned. Another input to an open transition or a re-check changes neither the ETA nor the SLO;
        # what time alone changes (stuck, at risk) comes due by itself (`next_due`; a stuck due time left
        # early by newer progress only costs one assessment that finds nothing).
        return day if kind in _SHAPING_KINDS or _shape(pulse, row) != shape else None

    def _flags(self, day: date) -> WatchFlags:
        found = self.flags.get(day)
        if found is None:
            found = self.flags[day] = WatchFlags()
        return found
