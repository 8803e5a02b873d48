"""What the engine owes the game-day calendar: the expected days still to open, and the silence between
completion messages. The rules are pure (`policies.calendar`); this keeps the two cursors that move with the
clock.

Which days: replay gives the span of its recording's game dates, so a replay of one date opens no other; the
daemon follows the clock from yesterday (a restart re-opens what it slept through, if its deadlines can
still run: an older day would open as backfill, which has none, and is left to the silence alert).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from policies.calendar import expected_game_days, opens_at, silence_alert_at
from policies.clock_math import local_date_and_minutes
from policies.model import Policy
from router.effects import RaiseAlert, Severity

LOOKBACK = timedelta(days=1)


class ExpectedDays:
    def __init__(self, first: date | None = None, last: date | None = None) -> None:
        # The next game date not yet considered; None: from yesterday, at the first look (daemon).
        self._next = first
        self._last = last
        self._heard_at: datetime | None = None
        self._alerted = False
        self._silence_cache: tuple[object, datetime | None] | None = None
        self._open_cache: tuple[object, datetime | None] | None = None

    # --- days to open -------------------------------------------------------------------------------------

    def due(self, now: datetime, policy: Policy) -> list[date]:
        """The expected game days whose opening instant has passed, each returned once."""
        calendar = policy.calendar
        if calendar is None:
            return []
        today = local_date_and_minutes(now, policy.timezone)[0]
        if self._next is None:
            self._next = today - LOOKBACK
        until = today if self._last is None else min(today, self._last)
        opened = []
        for day in expected_game_days(calendar, self._next, until):
            if opens_at(calendar, day, policy.timezone) > now:
                break
            opened.append(day)
            self._next = day + timedelta(days=1)
        else:
            self._next = max(self._next, until + timedelta(days=1))
        return opened

    def next_open_at(self, policy: Policy) -> datetime | None:
        """When the next expected day opens, within the span (replay); None when none is left or unbounded."""
        if policy.calendar is None or self._next is None or self._last is None:
            return None
        # Asked at every timer in replay: computed again only when the cursor or the policy moved.
        token = (self._next, id(policy))
        if self._open_cache is None or self._open_cache[0] != token:
            days = expected_game_days(policy.calendar, self._next, self._last)
            at = opens_at(policy.calendar, days[0], policy.timezone) if days else None
            self._open_cache = (token, at)
        return self._open_cache[1]

    # --- silence ------------------------------------------------------------------------------------------

    def heard(self, at: datetime) -> None:
        """A completion message arrived: a new silence starts, and may alert once."""
        self._heard_at = at
        self._alerted = False

    def silence_due_at(self, policy: Policy) -> datetime | None:
        calendar = policy.calendar
        if self._alerted or self._heard_at is None or calendar is None:
            return None
        after_s = calendar.silence_alert_after_s
        if after_s is None:
            return None
        # Asked at every timer in replay: computed again only when the silence or the policy changed.
        token = (self._heard_at, id(policy))
        if self._silence_cache is None or self._silence_cache[0] != token:
            at = silence_alert_at(calendar, self._heard_at, after_s, policy.timezone, self._last)
            self._silence_cache = (token, at)
        return self._silence_cache[1]

    def silence_alert(self, now: datetime, policy: Policy) -> RaiseAlert | None:
        if self._heard_at is None:
            self._heard_at = now  # the daemon's first look: the silence is measured from its start
        due = self.silence_due_at(policy)
        if due is None or due > now:
            return None
        self._alerted = True
        hours = (policy.calendar.silence_alert_after_s or 0) / 3600 if policy.calendar else 0
        text = (
            f"no completion message at all since {self._heard_at.isoformat()} ({hours:g} h of game days): "
            "check that the processors publish and that the subscriptions deliver"
        )
        return RaiseAlert("no_completions", Severity.ERROR, None, None, text)

    def next_at(self, policy: Policy) -> datetime | None:
        candidates = (self.next_open_at(policy), self.silence_due_at(policy))
        return min((at for at in candidates if at is not None), default=None)
