"""Every Prometheus metric of the daemon, owned by one class on an injected `CollectorRegistry`.

The daemon builds one `Metrics` on its own registry, with the process' runtime metrics (`process_*`,
`python_gc_*`, `python_info`); tests build one per test on a fresh registry, with only the `cascade_*` ones.
Label values are kept to small, bounded sets: free text (dead-letter reasons, outcomes the caller made up)
is reduced to a fixed category here, so a bad message can never create a new time series.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping
from datetime import datetime

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from policies.breaker import BreakerState
from policies.model import Mode
from router.effects import Severity
from router.intake import Rejection
from router.keys import Key
from router.state import DateState, Phase

CONTENT_TYPE = CONTENT_TYPE_LATEST

# What `Engine.deliver` reported for a message, plus "nacked" (it raised: the message will be redelivered).
EVENT_STATUSES = frozenset({"routed", "duplicate", "dead_lettered", "nacked"})
# Decided with the rejection (`router.intake.Rejection`) and carried on the dead-letter row, never parsed.
DEAD_LETTER_REASONS = tuple(sorted(category.value for category in Rejection))
RELOAD_RESULTS = frozenset({"applied", "unchanged", "invalid", "error"})
# Keys that still wait for something: inputs, an operator (failed), or a breaker cooldown.
PENDING_PHASES = (Phase.COLLECTING, Phase.FAILED, Phase.BREAKER_OPEN)
REPORTED_BREAKER_STATES = (BreakerState.OPEN, BreakerState.HALF_OPEN)
# Alert names the code raises (router/machine.py, router/outcomes.py, ops/alerting.py and the SLO monitor);
# any other name is counted as "other". tests/unit/test_metrics.py scans router/ and ops/ for names
# missing here.
ALERT_NAMES = frozenset(
    {
        *("unknown_processor", "fallback_deadline_missed", "self_heal", "manual_intervention_required"),
        *("critical_input_failed", "force_ignored", "publish_failed", "circuit_open", "alerts_suppressed"),
        *("slo_violation", "slo_at_risk", "pipeline_stuck", "no_completions"),
        *("state_store_unavailable", "state_store_recovered"),
    }
)
# Lower case, like the `severity` label of the Prometheus alert rules, so one matcher reads both.
ALERT_SEVERITIES = frozenset(severity.value.lower() for severity in Severity)
SLO_NAMES = frozenset({"end_to_end", "completeness", "quality", "cascade_success_rate", "self_heal_share"})
MODES = frozenset(mode.value for mode in Mode)
SLO_RESULTS = ("met", "missed")

# Trigger latency: a normal cascade takes well under a second; fallback and self-heal triggers come
# hours after the last input, so the buckets reach 12 h.
TRIGGER_LATENCY_BUCKETS_S = (
    *(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    *(300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0),
)
# End to end (first phase-2 input -> last trigger of the date), up to a day. The same-day (2 h) and tomorrow
# (4 h) objectives are bucket edges; overnight (8 h) falls between 6 h and 12 h, so for it the histogram
# only brackets the objective (`cascade_slo_dates_total` says exactly whether each date met it).
END_TO_END_BUCKETS_S = (600, 1800, 3600, 5400, 7200, 10800, 14400, 21600, 43200, 86400)
HANDLING_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_DEAD_LETTER_CATEGORIES = frozenset(DEAD_LETTER_REASONS)


def _bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"


class Metrics:
    def __init__(self, registry: CollectorRegistry, *, process_metrics: bool = False) -> None:
        """`process_metrics`: also expose the process' CPU, memory, open files and start time (`process_*`,
        read from /proc, so Linux only), the garbage collector's counts (`python_gc_*`) and the interpreter
        (`python_info`). prometheus_client puts these on its default registry only, which the daemon does not
        serve; their collectors read the process on each scrape and keep no state, so they can be shared."""
        self.registry = registry
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
                registry.register(collector)
        self.events = Counter(
            "cascade_events_received_total",
            "Messages delivered from a completion subscription, by outcome "
            "(routed, duplicate, dead_lettered, nacked).",
            ["topic", "status"],
            registry=registry,
        )
        self.store_conflicts = Counter(
            "cascade_state_store_conflicts_total",
            "Conditional writes of a key's shared record refused because another instance wrote it first "
            "(the decision is then made again on the newer record).",
            registry=registry,
        )
        self.dead_letters = Counter(
            "cascade_dead_letters_total",
            "Messages dead-lettered, by reason category.",
            ["reason"],
            registry=registry,
        )
        self.decisions = Counter(
            "cascade_decisions_total",
            "Dependency checks evaluated.",
            ["transition", "mode", "decision"],
            registry=registry,
        )
        self.triggers = Counter(
            "cascade_triggers_total",
            "Triggers published (confirmed).",
            ["transition", "source", "degraded"],
            registry=registry,
        )
        self.duplicates = Counter(
            "cascade_duplicates_suppressed_total",
            "Redelivered or repeated completions that changed nothing.",
            registry=registry,
        )
        self.trigger_latency = Histogram(
            "cascade_trigger_latency_seconds",
            "From the newest input report to the trigger being published.",
            ["transition", "source"],
            buckets=TRIGGER_LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.handling = Histogram(
            "cascade_event_handling_seconds",
            "Time to handle one delivered message (Engine.deliver), until it may be acked.",
            buckets=HANDLING_BUCKETS_S,
            registry=registry,
        )
        self.breakers = Gauge(
            "cascade_breaker_keys",
            "(game_date, transition) keys whose circuit breaker is open or half-open.",
            ["transition", "state"],
            registry=registry,
        )
        self.pending = Gauge(
            "cascade_pending_dates",
            "(game_date, transition) keys not triggered yet, by phase (collecting, failed, breaker_open).",
            ["transition", "phase"],
            registry=registry,
        )
        self.oldest_collecting = Gauge(
            "cascade_oldest_collecting_age_seconds",
            "Age of the oldest key still collecting inputs (0 when none): a day that is stuck.",
            ["transition"],
            registry=registry,
        )
        self.store_outage = Gauge(
            "cascade_state_store_unavailable",
            "1 while this instance routes on its own state because the state store does not answer.",
            registry=registry,
        )
        self.journal_keys = Gauge(
            "cascade_store_journal_keys",
            "Keys decided in the store outage and journaled locally, not yet written to the store.",
            registry=registry,
        )
        self.audit_buffered = Gauge(
            "cascade_audit_buffered_rows",
            "Audit rows buffered in memory, waiting to be sent.",
            registry=registry,
        )
        self.audit_spooled = Gauge(
            "cascade_audit_spool_pending_rows",
            "Audit rows in the local spool file, waiting to be resent.",
            registry=registry,
        )
        self.reloads = Counter(
            "cascade_policy_reloads_total",
            "Policy reload attempts, by result (applied, unchanged, invalid, error).",
            ["result"],
            registry=registry,
        )
        self.last_pull = Gauge(
            "cascade_last_successful_pull_timestamp_seconds",
            "Unix time of the last pull that Pub/Sub answered (with or without messages).",
            registry=registry,
        )
        self.alerts = Counter(
            "cascade_alerts_total",
            "Alerts raised by the router (before rate limiting), by name and severity.",
            ["alert", "severity"],
            registry=registry,
        )
        self.slo_dates = Counter(
            "cascade_slo_dates_total",
            "Dates whose outcome for an objective is known, by objective, mode and result (met, missed).",
            ["slo", "mode", "result"],
            registry=registry,
        )
        self.slo_compliance_ratio = Gauge(
            "cascade_slo_compliance_ratio",
            "Share (0..1) of the rolling window's dates that met the objective; for self_heal_share, the "
            "share that did not need the self-heal deadline.",
            ["slo"],
            registry=registry,
        )
        self.end_to_end_latency = Histogram(
            "cascade_slo_end_to_end_seconds",
            "From a date's first phase-2 input to its last transition's trigger being published.",
            ["mode"],
            buckets=END_TO_END_BUCKETS_S,
            registry=registry,
        )
        self.at_risk = Gauge(
            "cascade_dates_at_risk",
            "Dates still in progress that are expected to miss an objective.",
            registry=registry,
        )
        # Transitions ever seen by observe_engine: their series are reset to 0, never left stale.
        self._transitions: set[str] = set()
        self._start_bounded_series_at_zero()

    def _start_bounded_series_at_zero(self) -> None:
        """Create each known series of a bounded counter at 0, so that `increase()` sees its first event.

        A series that appears with the value 1 has no earlier sample to increase from: the first dead letter
        or invalid reload after a restart would be invisible to the alert rules. The compliance gauge is
        left out on purpose: 0 would read as "every date missed"."""
        # Sorted, so that /metrics lists them in the same order in every process.
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for result in sorted(RELOAD_RESULTS):
            self.reloads.labels(result)
        for alert in sorted(ALERT_NAMES):
            for severity in sorted(ALERT_SEVERITIES):
                self.alerts.labels(alert, severity)
        for mode in sorted(MODES):
            self.end_to_end_latency.labels(mode)
            for slo in sorted(SLO_NAMES):
                for result in SLO_RESULTS:
                    self.slo_dates.labels(slo, mode, result)

    # --- called by the daemon -------------------------------------------------------------------------

    def event_received(self, topic: str, status: str) -> None:
        self.events.labels(topic, _bounded(status, EVENT_STATUSES)).inc()

    def dead_lettered(self, category: str) -> None:
        """`category`: a `router.intake.Rejection` value, as the dead-letter audit row carries it."""
        self.dead_letters.labels(_bounded(category, _DEAD_LETTER_CATEGORIES)).inc()

    def decision(self, transition: str, mode: str, decision: str) -> None:
        self.decisions.labels(transition, mode, decision).inc()

    def trigger_published(
        self, transition: str, source: str, degraded: bool, latency_s: float | None
    ) -> None:
        """`latency_s` is None when there was no input to measure from (a forced trigger on no data)."""
        self.triggers.labels(transition, source, "true" if degraded else "false").inc()
        if latency_s is not None:
            self.trigger_latency.labels(transition, source).observe(max(latency_s, 0.0))

    def store_write_refused(self) -> None:
        self.store_conflicts.inc()

    def duplicate(self) -> None:
        self.duplicates.inc()

    def handled(self, seconds: float) -> None:
        self.handling.observe(seconds)

    def observe_engine(self, states: Mapping[Key, DateState], now: datetime) -> None:
        """Set the gauges that describe the engine's keys (call before each scrape or on each tick).

        The breaker gauge shows the state the machine last recorded: an open breaker whose cooldown has
        passed reads open until the next tick moves it to half-open."""
        breakers: Tally[tuple[str, BreakerState]] = Tally()
        pending: Tally[tuple[str, Phase]] = Tally()
        oldest: dict[str, datetime] = {}
        for key, state in states.items():
            self._transitions.add(key.transition)
            breakers[key.transition, state.breaker.state] += 1
            pending[key.transition, state.phase] += 1
            if state.phase is Phase.COLLECTING:
                first = oldest.get(key.transition)
                oldest[key.transition] = state.opened_at if first is None else min(first, state.opened_at)
        for transition in self._transitions:
            for breaker_state in REPORTED_BREAKER_STATES:
                count = breakers[transition, breaker_state]
                self.breakers.labels(transition, breaker_state.value).set(count)
            for phase in PENDING_PHASES:
                self.pending.labels(transition, phase.value).set(pending[transition, phase])
            opened = oldest.get(transition)
            age = (now - opened).total_seconds() if opened is not None else 0.0
            self.oldest_collecting.labels(transition).set(max(age, 0.0))

    def observe_audit(self, buffered: int, spooled: int) -> None:
        """`spooled`: rows in the spool file still to resend (the sink's `spool_pending`)."""
        self.audit_buffered.set(buffered)
        self.audit_spooled.set(spooled)

    def observe_store(self, in_outage: bool, journaled_keys: int) -> None:
        self.store_outage.set(1 if in_outage else 0)
        self.journal_keys.set(journaled_keys)

    def policy_reload(self, result: str) -> None:
        self.reloads.labels(_bounded(result, RELOAD_RESULTS)).inc()

    # --- called by the engine and the SLO monitor ----------------------------------------------------------

    def alert_raised(self, alert: str, severity: str) -> None:
        """`severity` in any case ("CRITICAL" as `router.effects.Severity` spells it, or "critical")."""
        self.alerts.labels(_bounded(alert, ALERT_NAMES), _bounded(severity.lower(), ALERT_SEVERITIES)).inc()

    def slo_outcome(self, slo: str, mode: str, met: bool) -> None:
        """Once per date and objective, when the date's result for it is final."""
        self.slo_dates.labels(
            _bounded(slo, SLO_NAMES), _bounded(mode, MODES), "met" if met else "missed"
        ).inc()

    def slo_compliance(self, slo: str, ratio: float) -> None:
        self.slo_compliance_ratio.labels(_bounded(slo, SLO_NAMES)).set(ratio)

    def end_to_end(self, mode: str, seconds: float) -> None:
        self.end_to_end_latency.labels(_bounded(mode, MODES)).observe(max(seconds, 0.0))

    def dates_at_risk(self, count: int) -> None:
        self.at_risk.set(count)

    def pulled(self, now: datetime) -> None:
        self.last_pull.set(now.timestamp())

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
