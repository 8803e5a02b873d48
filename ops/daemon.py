"""`cascade run`: the composition root and lifecycle of the always-on router.

Builds everything from the settings (nothing else reads the environment or creates clients), checks that
every topic and subscription the policy names exists, then runs in ONE task group: the Pub/Sub consumers,
the timer loop, the state-store probe (in an outage), the audit flusher, the HTTP server and the signal
watcher. If any of them crashes, the group is cancelled and the process exits non-zero; never a half-alive
process.

Lifecycle, in order. The signal handlers are installed first, before anything that can take time (building
clients, checking topics, reading history, the rebuild): a SIGHUP during start is held and applied once the
daemon exists, a SIGTERM during start cancels the start. Then one ordered shutdown path, which runs after a
stop signal, after a crash of any task and after a failed start alike (`finally`), within
`shutdown_grace_s` (Cloud Run kills 10 s after SIGTERM; every inner timeout comes from it, `ops.drain`):
stop pulling and timers → in-flight handlers finish within the drain window, the rest are cancelled (nacked)
and counted → their acks/nacks are sent → the audit buffer is flushed with what is left of the budget, and
every row not confirmed sent is spooled to disk (fsync'd) → HTTP and clients close. A crash then exits
non-zero. A second signal forces the exit.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
from aiohttp import web
from prometheus_client import CollectorRegistry

from adapters.batched_topics import BatchedTopics
from adapters.bigquery_audit import BigQueryAuditSink
from adapters.bigquery_history import BigQueryHistory
from adapters.clock import SystemClock
from adapters.errors import CascadeError, ConfigurationError, TransientError
from adapters.firestore_store import FirestoreStateStore, firestore_client
from adapters.journal import FileJournal
from adapters.ports import AuditRow, AuditSink
from adapters.pubsub import PubSubPublisher, PubSubSource
from adapters.pubsub_admin import PubSubAdmin, completion_subscriptions
from adapters.source import Received
from ops.day_watch import DayWatch
from ops.drain import Drain, ShutdownPlan
from ops.engine import Delivery, Engine, EngineConfig
from ops.http import make_app
from ops.metrics import Metrics
from ops.operator_view import OperatorView
from ops.policy_file import load_policy
from ops.policy_holder import PolicyHolder
from ops.settings import Settings
from ops.signals import watch_signals
from ops.status import liveness, readiness, status
from router import events as ev
from router.effects import PublishTrigger
from router.keys import Key
from router.state import DateState

log = logging.getLogger("cascade.daemon")

TICK_MAX_S = 1.0  # the timer loop wakes at least this often (liveness is measured by it)
LIVENESS_STALL_S = 30.0
FORGET_EVERY = timedelta(hours=1)  # how often settled keys older than the recent window leave memory
SWEEP_EVERY = timedelta(minutes=1)  # how often every open date's ETA is held against its SLO deadline
SEED_TIMEOUT_S = 20.0  # reading recent history from BigQuery at start; routing must not wait longer


@dataclass
class Progress:
    """What the health endpoints report: the loop's last tick, the last ack, whether we are stopping."""

    started_at: datetime
    last_tick_at: datetime | None = None
    last_ack_at: datetime | None = None
    stopping: anyio.Event = field(default_factory=anyio.Event)


class MeteredAudit:
    """Counts decisions and dead letters from the audit rows on their way to the sink."""

    def __init__(self, inner: AuditSink, metrics: Metrics) -> None:
        self._inner, self._metrics = inner, metrics

    async def write(self, rows: Sequence[AuditRow]) -> None:
        for row in rows:
            kind = row["kind"]
            if kind == "decision":
                self._metrics.decision(row["transition"], row["mode"], row["decision"])
            elif kind == "dead_letter":
                self._metrics.dead_lettered(row["category"])
            elif kind == "alert":
                self._metrics.alert_raised(row["alert"], row["severity"])
            elif kind == "slo":
                self._count_slo(row)
        await self._inner.write(rows)

    def _count_slo(self, row: AuditRow) -> None:
        for result in row["results"]:
            self._metrics.slo_outcome(result["slo"], row["mode"], bool(result["met"]))
        if row["end_to_end_s"] is not None:
            self._metrics.end_to_end(row["mode"], float(row["end_to_end_s"]))

    async def flush(self) -> None:
        await self._inner.flush()


class Daemon:
    def __init__(
        self, settings: Settings, session: aiohttp.ClientSession, stopping: anyio.Event | None = None
    ) -> None:
        self.settings = settings
        self.clock = SystemClock()
        self.progress = Progress(started_at=self.clock.now(), stopping=stopping or anyio.Event())
        self.plan = ShutdownPlan(settings.shutdown_grace_s)
        self.drain = Drain()
        self.since: date | None = None  # the rebuild's first game date, for the stopped line
        self._stop_began: float | None = None  # anyio.current_time() when the ordered shutdown began
        self._runner: web.AppRunner | None = None
        self._closed = False
        self._last_forget = self.progress.started_at
        self._last_sweep = self.progress.started_at
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, process_metrics=True)
        self.policy = PolicyHolder(load_policy(settings.policy_path), settings.policy_path)
        pubsub_root = _root(settings.pubsub_emulator_host, "/v1")
        bigquery_root = _root(settings.bigquery_emulator_host, "/bigquery/v2")
        self.publisher = PubSubPublisher(settings.project, session=session, api_root=pubsub_root)
        self.source = PubSubSource(
            settings.project,
            completion_subscriptions(self.policy.current(), settings.names),
            max_in_flight=settings.max_in_flight,
            session=session,
            api_root=pubsub_root,
            ack_batch_max=settings.ack_batch_max,
            ack_batch_delay_s=settings.ack_batch_delay_s,
            settle_timeout_s=self.plan.settle_s,
        )
        self.audit = BigQueryAuditSink(
            settings.project,
            settings.bigquery_dataset,
            settings.audit_spool_path,
            session=session,
            api_root=bigquery_root,
        )
        self.store = FirestoreStateStore(
            firestore_client(settings.project),
            settings.firestore_collection,
            on_conflict=self.metrics.store_write_refused,
        )
        config = EngineConfig(
            instance_id=settings.instance_id,
            names=settings.names,
            claim_lease_s=settings.claim_lease_s,
            reaudit_redeliveries=True,
        )
        metered = MeteredAudit(self.audit, self.metrics)
        # Status announcements and alerts are best effort: they wait up to 0.2 s to share a request.
        notified = [topic for topic in (settings.status_topic, settings.alert_topic) if topic]
        self.notifications = BatchedTopics(self.publisher, notified)
        # Whole dates (SLOs, ETA, stuck dates) and the rows the dashboard pages show.
        self.watch = DayWatch(self.policy.current(), keep_rows=True, states_of=self._states_of)
        self.view = OperatorView(self.watch, self.policy.current, self.clock, settings.recent_days)
        self.engine = Engine(
            self.policy.current,
            self.store,
            self.notifications,
            metered,
            self.clock,
            config,
            self._triggered,
            self.watch,
            FileJournal(journal_path(settings)),
        )

    def _states_of(self, game_date: date) -> list[DateState]:
        return [state for key, state in self.engine.states.items() if key.game_date == game_date]

    def _triggered(self, effect: PublishTrigger, latency_s: float | None) -> None:
        transition, source = effect.key.transition, effect.source.value
        self.metrics.trigger_published(transition, source, effect.degraded, latency_s)

    # --- the task group -----------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Route until a stop signal or a crash. Both end the same way: the group is cancelled, which
        stops pulling and the timers and begins the drain (`_drain_on_cancel`); `close()` comes after."""
        self._runner = await self._start_http()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._drain_on_cancel)
                tasks.start_soon(self.audit.run)
                tasks.start_soon(self.notifications.run)
                tasks.start_soon(self._tick_loop)
                tasks.start_soon(self._probe_loop)
                tasks.start_soon(self.source.run, self._handle)
                log.info("cascade is routing", extra={"instance_id": self.settings.instance_id})
                await self.progress.stopping.wait()
                tasks.cancel_scope.cancel()
        except Exception:  # a crash (cancellation from outside is not one); the ordered shutdown follows
            log.critical("a task crashed: shutting down in order", exc_info=True)
            raise

    async def _drain_on_cancel(self) -> None:
        """Begins the drain when the group is cancelled, whatever cancelled it (a signal or a crash)."""
        try:
            await anyio.sleep_forever()
        finally:
            self._begin_stop()
            self.drain.begin(self.plan.drain_s)

    def _begin_stop(self) -> None:
        if self._stop_began is None:
            self._stop_began = anyio.current_time()
        self.progress.stopping.set()

    async def _handle(self, received: Received) -> None:
        began = time.perf_counter()
        with self.drain.guard() as guarded:  # a shutdown lets it finish, up to the drain deadline
            try:
                outcome = await self.engine.deliver(
                    received.topic, received.message_id, received.data, received.attributes
                )
            except TransientError:
                self.metrics.event_received(received.topic, "nacked")
                raise
        if guarded.cancelled_caught:
            self.metrics.event_received(received.topic, "nacked")
            raise TransientError(f"{received.message_id}: cut short by the shutdown's drain deadline")
        self.metrics.event_received(received.topic, outcome.value)
        if outcome is Delivery.DUPLICATE:
            self.metrics.duplicate()
        now = self.clock.now()
        self.progress.last_ack_at = now
        self.metrics.pulled(now)
        self.metrics.handled(time.perf_counter() - began)

    async def _tick_loop(self) -> None:
        """Timers run without messages: re-checks, deadlines, breaker cooldowns, publish retries."""
        while True:
            try:
                await self.engine.follow_calendar()  # silent game days open, a long silence alerts
                await self.engine.fire_due(probe=False)
            except TransientError as exc:
                log.warning("timer pass interrupted, retrying on the next tick: %s", exc)
            now = self.clock.now()
            self.progress.last_tick_at = now
            if now - self._last_forget >= FORGET_EVERY:
                self._forget(now)
            if now - self._last_sweep >= SWEEP_EVERY:
                await self._sweep(now)
            self.metrics.observe_engine(self.engine.states, now)
            self.metrics.observe_audit(self.audit.buffered, self.audit.spool_pending)
            self.metrics.observe_store(self.engine.local.active, self.engine.local.journaled_keys)
            due = self.engine.next_due()
            wait_s = TICK_MAX_S if due is None else (due - self.clock.now()).total_seconds()
            await anyio.sleep(min(max(wait_s, 0.0), TICK_MAX_S))

    async def _probe_loop(self) -> None:
        """In a Firestore outage, try the store every `state_store.probe_every_s` (`Engine.probe_store`);
        its own task, so a store that holds the call until its timeout never delays a timer."""
        while True:
            await self.engine.probe_store()
            await anyio.sleep(TICK_MAX_S)

    def _forget(self, now: datetime) -> None:
        before = (now - timedelta(days=self.settings.recent_days + 1)).date()
        self.engine.forget(before)
        self.watch.forget(before)
        self.watch.trim(self.policy.current(), now.date())
        self._last_forget = now

    async def _sweep(self, now: datetime) -> None:
        """Every open date's outlook moves with time (ETA vs SLO deadline); and the SLO gauges."""
        try:
            await self.engine.sweep()
        except TransientError as exc:
            log.warning("date watch sweep interrupted, retrying on the next one: %s", exc)
        policy = self.policy.current()
        self.metrics.dates_at_risk(self.watch.at_risk())
        report = self.view.slo_json(policy.slo.window_days)
        for row in report["compliance"]:
            if row["ratio"] is not None:
                # The gauge is "higher is better" for every SLO (the alert rules compare it with a floor):
                # the self-heal share is exported as the share of triggers that did not need self-heal.
                ratio = 1.0 - row["ratio"] if row["slo"] == "self_heal_share" else row["ratio"]
                self.metrics.slo_compliance(row["slo"], ratio)
        self._last_sweep = now

    async def close(self) -> None:
        """The end of the ordered shutdown (after the drain, or after a failed start): flush the queued
        notifications and the audit buffer with what is left of the budget (what BigQuery does not confirm
        in time is spooled), then close HTTP. Shielded: it runs also when the caller is being cancelled."""
        if self._closed:
            return
        self._closed = True
        self._begin_stop()
        assert self._stop_began is not None
        flush_until = self._stop_began + self.plan.usable_s
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(max(0.0, (flush_until - anyio.current_time()) / 4)):
                await self.notifications.flush()
            await self.audit.flush(budget_s=max(0.0, flush_until - anyio.current_time()))
            if self._runner is not None:
                with anyio.move_on_after(self.plan.reserve_s):
                    await self._runner.cleanup()
        log.info(
            "cascade stopped: %d in flight at stop, %d finished, %d cancelled; %d audit rows spooled",
            self.drain.in_flight,
            self.drain.drained,
            self.drain.cancelled,
            self.audit.spool_pending,
            extra={
                "keys": len(self.engine.states),
                "since": self.since.isoformat() if self.since else None,
                "in_flight": self.drain.in_flight,
                "drained": self.drain.drained,
                "cancelled": self.drain.cancelled,
                "buffered": self.audit.buffered,
                "spooled": self.audit.spool_pending,
            },
        )

    # --- signals ------------------------------------------------------------------------------------------

    async def _reload(self) -> None:
        result = await anyio.to_thread.run_sync(self.policy.reload)
        self.metrics.policy_reload(
            "applied" if result.ok and result.changes else ("unchanged" if result.ok else "invalid")
        )

    # --- HTTP -------------------------------------------------------------------------------------------

    async def _start_http(self) -> web.AppRunner:
        token = self.settings.admin_token.get_secret_value() if self.settings.admin_token else None
        app = make_app(
            self.metrics,
            self._status,
            self._health,
            self._ready,
            self,
            token,
            lambda: set(self.policy.current().transitions),
            self.view,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", self.settings.port).start()
        return runner

    def _status(self) -> dict[str, Any]:
        now = self.clock.now()
        since = (now - timedelta(days=self.settings.recent_days)).date()
        health = self.engine.local.health
        store = {
            "outage": health.in_outage,  # README, "When Firestore is down"
            "failing_since": health.failing_since.isoformat() if health.failing_since else None,
            "journaled_keys": self.engine.local.journaled_keys,
        }
        return {**status(self.engine.states, since, now), "state_store": store}

    def _health(self) -> tuple[bool, dict[str, Any]]:
        p = self.progress
        return liveness(self.clock.now(), p.last_tick_at, p.last_ack_at, LIVENESS_STALL_S)

    def _ready(self) -> tuple[bool, dict[str, Any]]:
        # Connectivity was verified at start; after that, "caught up" is what can go wrong.
        return readiness(
            self.clock.now(),
            backends={},
            last_pull_at=self.progress.last_ack_at or self.progress.started_at,
            max_pull_age_s=math.inf,
            next_due=self.engine.next_due(),
            max_timer_lag_s=60.0,
            stopping=self.progress.stopping.is_set(),
        )

    # --- admin actions (ops.http.AdminActions) ----------------------------------------------------------

    async def reset_breaker(self, key: Key, operator: str) -> None:
        await self.engine.submit(key, ev.ResetBreaker(operator))

    async def force_trigger(self, key: Key, operator: str, reason: str) -> None:
        await self.engine.submit(key, ev.ForceTrigger(operator, reason))


def journal_path(settings: Settings) -> Path:
    """Per instance, like the audit spool: by default next to it."""
    spool = settings.audit_spool_path
    return settings.journal_path or spool.with_name(spool.name + ".outage-journal")


def _root(host_port: str | None, path: str) -> str | None:
    return f"http://{host_port}{path}" if host_port else None


class _Lifecycle:
    """What the signal watcher acts on before the daemon exists: a held reload, a stop that cancels the
    start. Installed first, so no signal sent after `run()` began reaches Python's default action."""

    def __init__(self) -> None:
        self.stopping = anyio.Event()
        self.starting = anyio.CancelScope()
        self.daemon: Daemon | None = None
        self.ready = anyio.Event()

    async def reload(self) -> None:
        await self.ready.wait()  # a SIGHUP during start is applied once the daemon exists
        assert self.daemon is not None
        await self.daemon._reload()

    def stop(self, signum: int) -> None:
        log.info("stopping on signal %s", signum, extra={"signal": signal.Signals(signum).name})
        self.stopping.set()
        self.starting.cancel()  # a start still under way ends now; the ordered shutdown follows


async def run(settings: Settings) -> int:
    lifecycle = _Lifecycle()
    try:
        async with anyio.create_task_group() as signals:
            await signals.start(watch_signals, lifecycle.reload, lifecycle.stop)
            log.info(
                "cascade starting: signal handlers installed", extra={"instance_id": settings.instance_id}
            )
            await _start_and_serve(settings, lifecycle)
            signals.cancel_scope.cancel()  # last: a second SIGTERM during the shutdown still forces exit
    except BaseExceptionGroup as group:
        raise _only(group) from None
    return 0


async def _start_and_serve(settings: Settings, lifecycle: _Lifecycle) -> None:
    async with aiohttp.ClientSession() as session:
        daemon = Daemon(settings, session, lifecycle.stopping)
        lifecycle.daemon = daemon
        lifecycle.ready.set()
        try:
            with lifecycle.starting:
                await verify_topics(daemon, session)
                daemon.since = (daemon.clock.now() - timedelta(days=settings.recent_days)).date()
                await seed_history(daemon, session)  # first: the rows the rebuild writes come after these
                restored = await daemon.engine.recover(daemon.since)
                log.info(
                    "restored %d recent keys (from the state store, or the outage journal)",
                    restored,
                    extra={"since": daemon.since.isoformat()},
                )
            if not lifecycle.stopping.is_set():
                await daemon.serve()
        finally:
            await daemon.close()


def _only(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one failure inside (nested) task groups, so the CLI maps its type to an exit code."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


async def verify_topics(daemon: Daemon, session: aiohttp.ClientSession) -> None:
    """Every subscription the policy needs must exist, on the right topic, and every trigger topic too: the
    old system once listened on a topic nobody published to and published into one nobody subscribed to.
    So must the dead-letter, alert and status topics (`PubSubAdmin.missing`)."""
    settings = daemon.settings
    admin = PubSubAdmin(settings.project, session, _root(settings.pubsub_emulator_host, "/v1"))
    missing = await admin.missing(daemon.policy.current(), settings.names)
    if missing:
        raise ConfigurationError(
            "missing Pub/Sub resources (run `cascade provision`): " + ", ".join(sorted(missing))
        )


async def seed_history(daemon: Daemon, session: aiohttp.ClientSession) -> None:
    """The recent audit rows from BigQuery: the pages show dates from before this process, ETAs have their
    recent durations and the SLO window its dates. Best effort and bounded in time: without it the router
    routes the same, the views just start empty."""
    settings, policy = daemon.settings, daemon.policy.current()
    today = daemon.clock.now().date()
    first = today - timedelta(
        days=max(settings.recent_days, policy.slo.window_days, policy.slo.eta_history_days)
    )
    history = BigQueryHistory(
        settings.project,
        settings.bigquery_dataset,
        session=session,
        api_root=_root(settings.bigquery_emulator_host, "/bigquery/v2"),
    )
    rows: list[AuditRow] = []
    with anyio.move_on_after(SEED_TIMEOUT_S) as scope:
        try:
            rows = await history.rows(first, today)
        except CascadeError as exc:
            log.warning("starting without recent history (the pages fill as events arrive): %s", exc)
            return
    if scope.cancelled_caught:
        log.warning("starting without recent history: BigQuery did not answer within %.0f s", SEED_TIMEOUT_S)
        return
    daemon.watch.seed(rows)
    log.info("read %d audit rows of %s .. %s for the operator's view", len(rows), first, today)
