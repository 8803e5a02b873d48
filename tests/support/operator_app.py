"""The daemon's HTTP app with its operator view over recorded rows, for tests that read the view's routes
without a daemon (the date watch seeded as the daemon seeds it from the audit tables)."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry

from adapters.clock import VirtualClock
from adapters.ports import AuditRow
from ops.day_watch import DayWatch
from ops.http import make_app
from ops.metrics import Metrics
from ops.operator_view import OperatorView
from policies.model import Policy
from views.history import parse_time


def daemon_app(rows: Sequence[AuditRow], policy: Policy) -> web.Application:
    """The daemon's HTTP app with its operator view over these rows, as of the last of them."""
    watch = DayWatch(policy, keep_rows=True)
    watch.seed(rows)
    clock = VirtualClock(max(parse_time(row["at"]) for row in rows))
    view = OperatorView(watch, lambda: policy, clock, recent_days=30)
    return make_app(
        Metrics(CollectorRegistry()),
        status_source=dict,
        health=lambda: (True, {}),
        ready=lambda: (True, {}),
        admin=None,
        admin_token=None,
        known_transitions=lambda: set(policy.transitions),
        view=view,
    )
