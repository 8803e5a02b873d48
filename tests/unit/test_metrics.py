"""The daemon's metrics: conventional names, bounded labels, and values that parse back from the exposition."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from ops.metrics import (
    ALERT_NAMES,
    ALERT_SEVERITIES,
    DEAD_LETTER_REASONS,
    MODES,
    SLO_NAMES,
    Metrics,
)
from policies.breaker import Breaker, BreakerState
from policies.model import Mode
from router.intake import Rejection
from router.keys import Key
from router.state import DateState, Phase
from tests.support.builders import utc

NOW = utc("2025-12-31T07:00")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())  # fresh per test: nothing leaks between tests


def families(metrics: Metrics) -> dict[str, tuple[str, list[Sample]]]:
    """name -> (type, samples), from the rendered text, as a scraper would read it.

    Leaves out the `*_created` gauges prometheus_client adds per counter and histogram series (they are the
    library's, not ours; `prometheus_client.disable_created_metrics()` at process start removes them)."""
    text = metrics.render().decode()
    parsed = text_string_to_metric_families(text)
    return {f.name: (f.type, list(f.samples)) for f in parsed if not f.name.endswith("_created")}


def value(metrics: Metrics, sample_name: str, **labels: str) -> float | None:
    for _, samples in families(metrics).values():
        for sample in samples:
            if sample.name == sample_name and sample.labels == labels:
                return sample.value
    return None


def test_every_metric_is_exposed_with_conventional_names_and_types(metrics: Metrics) -> None:
    found = families(metrics)
    expected_types = {
        "cascade_events_received": "counter",
        "cascade_dead_letters": "counter",
        "cascade_decisions": "counter",
        "cascade_triggers": "counter",
        "cascade_duplicates_suppressed": "counter",
        "cascade_policy_reloads": "counter",
        "cascade_state_store_conflicts": "counter",
        "cascade_trigger_latency_seconds": "histogram",
        "cascade_event_handling_seconds": "histogram",
        "cascade_breaker_keys": "gauge",
        "cascade_pending_dates": "gauge",
        "cascade_oldest_collecting_age_seconds": "gauge",
        "cascade_audit_buffered_rows": "gauge",
        "cascade_audit_spool_pending_rows": "gauge",
        "cascade_last_successful_pull_timestamp_seconds": "gauge",
        "cascade_alerts": "counter",
        "cascade_slo_dates": "counter",
        "cascade_slo_compliance_ratio": "gauge",
        "cascade_slo_end_to_end_seconds": "histogram",
        "cascade_dates_at_risk": "gauge",
        "cascade_state_store_unavailable": "gauge",
        "cascade_store_journal_keys": "gauge",
    }
    assert {name: kind for name, (kind, _) in found.items()} == expected_types


def test_counters_end_in_total_and_durations_in_seconds(metrics: Metrics) -> None:
    metrics.event_received("t", "routed")
    metrics.dead_lettered("not_json")
    metrics.decision("phase2_to_phase3", "overnight", "WAIT")
    metrics.trigger_published("phase2_to_phase3", "cascade", False, 0.2)
    metrics.duplicate()
    metrics.policy_reload("applied")
    metrics.handled(0.01)
    for name, (kind, samples) in families(metrics).items():
        assert name.startswith("cascade_")
        if kind == "counter":
            assert {s.name for s in samples} == {f"{name}_total"}
        if kind == "histogram" or "latency" in name or "age" in name:
            assert name.endswith("_seconds")


def test_event_status_outside_the_known_outcomes_is_reported_as_other(metrics: Metrics) -> None:
    metrics.event_received("nba-phase2-raw-complete", "routed")
    metrics.event_received("nba-phase2-raw-complete", "routed")
    metrics.event_received("nba-phase2-raw-complete", "something new")
    name = "cascade_events_received_total"
    assert value(metrics, name, topic="nba-phase2-raw-complete", status="routed") == 2
    assert value(metrics, name, topic="nba-phase2-raw-complete", status="other") == 1


def test_dead_letters_are_counted_by_the_category_carried_with_them_never_by_free_text(
    metrics: Metrics,
) -> None:
    metrics.dead_lettered(Rejection.NOT_JSON)
    metrics.dead_lettered("the store exploded in an unforeseen way")  # not a category: bounded to "other"
    _, samples = families(metrics)["cascade_dead_letters"]
    reasons = {s.labels["reason"] for s in samples if s.name.endswith("_total")}
    counted = {s.labels["reason"] for s in samples if s.name.endswith("_total") and s.value > 0}
    assert counted == {"not_json", "other"}
    assert reasons == set(DEAD_LETTER_REASONS) | {"other"}
    assert set(DEAD_LETTER_REASONS) == {category.value for category in Rejection}


def test_trigger_counts_by_source_and_degraded_and_observes_latency(metrics: Metrics) -> None:
    metrics.trigger_published("phase4_to_phase5", "fallback", True, 7200.0)
    metrics.trigger_published("phase4_to_phase5", "manual", False, None)  # forced on no data: no latency
    triggers = "cascade_triggers_total"
    assert value(metrics, triggers, transition="phase4_to_phase5", source="fallback", degraded="true") == 1
    assert value(metrics, triggers, transition="phase4_to_phase5", source="manual", degraded="false") == 1
    latency = "cascade_trigger_latency_seconds"
    labels = {"transition": "phase4_to_phase5", "source": "fallback"}
    assert value(metrics, f"{latency}_count", **labels) == 1
    assert value(metrics, f"{latency}_sum", **labels) == 7200.0
    assert value(metrics, f"{latency}_bucket", **labels, le="3600.0") == 0
    assert value(metrics, f"{latency}_bucket", **labels, le="7200.0") == 1
    assert value(metrics, f"{latency}_count", transition="phase4_to_phase5", source="manual") is None


def test_decisions_duplicates_handling_reloads_and_pulls_are_counted(metrics: Metrics) -> None:
    metrics.decision("phase2_to_phase3", "same_day", "PROCEED_DEGRADED")
    metrics.duplicate()
    metrics.duplicate()
    metrics.handled(0.003)
    metrics.policy_reload("applied")
    metrics.policy_reload("invalid")
    metrics.policy_reload("exploded")
    metrics.pulled(NOW)
    decisions = {"transition": "phase2_to_phase3", "mode": "same_day", "decision": "PROCEED_DEGRADED"}
    assert value(metrics, "cascade_decisions_total", **decisions) == 1
    assert value(metrics, "cascade_duplicates_suppressed_total") == 2
    assert value(metrics, "cascade_event_handling_seconds_count") == 1
    assert value(metrics, "cascade_event_handling_seconds_bucket", le="0.005") == 1
    assert value(metrics, "cascade_policy_reloads_total", result="applied") == 1
    assert value(metrics, "cascade_policy_reloads_total", result="invalid") == 1
    assert value(metrics, "cascade_policy_reloads_total", result="other") == 1
    assert value(metrics, "cascade_last_successful_pull_timestamp_seconds") == NOW.timestamp()


def test_audit_gauges_follow_the_latest_observation(metrics: Metrics) -> None:
    metrics.observe_audit(buffered=1200, spooled=40)
    metrics.observe_audit(buffered=3, spooled=0)
    assert value(metrics, "cascade_audit_buffered_rows") == 3
    assert value(metrics, "cascade_audit_spool_pending_rows") == 0


def _state(day: int, transition: str, phase: Phase, breaker: BreakerState, hours_ago: float) -> DateState:
    return DateState(
        key=Key(date(2025, 12, day), transition),
        mode=Mode.OVERNIGHT,
        opened_at=NOW - timedelta(hours=hours_ago),
        phase=phase,
        breaker=Breaker(state=breaker, failures=3 if breaker is not BreakerState.CLOSED else 0),
    )


def test_engine_gauges_count_open_breakers_and_pending_dates_per_transition(metrics: Metrics) -> None:
    states = [
        _state(28, "phase2_to_phase3", Phase.TRIGGERED, BreakerState.CLOSED, 30),
        _state(29, "phase2_to_phase3", Phase.FAILED, BreakerState.CLOSED, 20),
        _state(30, "phase2_to_phase3", Phase.COLLECTING, BreakerState.CLOSED, 2),
        _state(30, "phase3_to_phase4", Phase.BREAKER_OPEN, BreakerState.OPEN, 1),
        _state(29, "phase3_to_phase4", Phase.COLLECTING, BreakerState.HALF_OPEN, 5),
    ]
    metrics.observe_engine({s.key: s for s in states}, NOW)
    breakers, pending = "cascade_breaker_keys", "cascade_pending_dates"
    assert value(metrics, breakers, transition="phase3_to_phase4", state="open") == 1
    assert value(metrics, breakers, transition="phase3_to_phase4", state="half_open") == 1
    assert value(metrics, breakers, transition="phase2_to_phase3", state="open") == 0
    assert value(metrics, pending, transition="phase2_to_phase3", phase="collecting") == 1
    assert value(metrics, pending, transition="phase2_to_phase3", phase="failed") == 1
    assert value(metrics, pending, transition="phase3_to_phase4", phase="breaker_open") == 1
    assert value(metrics, pending, transition="phase2_to_phase3", phase="triggered") is None
    oldest = "cascade_oldest_collecting_age_seconds"
    assert value(metrics, oldest, transition="phase3_to_phase4") == 5 * 3600


def test_engine_gauges_return_to_zero_when_keys_settle_or_disappear(metrics: Metrics) -> None:
    stuck = _state(30, "phase3_to_phase4", Phase.BREAKER_OPEN, BreakerState.OPEN, 1)
    metrics.observe_engine({stuck.key: stuck}, NOW)
    metrics.observe_engine({}, NOW)
    assert value(metrics, "cascade_breaker_keys", transition="phase3_to_phase4", state="open") == 0
    assert value(metrics, "cascade_pending_dates", transition="phase3_to_phase4", phase="breaker_open") == 0
    assert value(metrics, "cascade_oldest_collecting_age_seconds", transition="phase3_to_phase4") == 0


def test_each_registry_holds_its_own_metrics() -> None:
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    first.duplicate()
    assert value(first, "cascade_duplicates_suppressed_total") == 1
    assert value(second, "cascade_duplicates_suppressed_total") == 0


def test_a_refused_store_write_is_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.store_write_refused()
    metrics.store_write_refused()
    assert value(metrics, "cascade_state_store_conflicts_total") == 2


def test_bounded_counters_start_every_known_series_at_zero_so_increase_sees_the_first_event(
    metrics: Metrics,
) -> None:
    # Prometheus' increase() needs a sample before the first event: a series born at 1 shows no increase.
    assert value(metrics, "cascade_dead_letters_total", reason="schema") == 0
    assert value(metrics, "cascade_policy_reloads_total", result="invalid") == 0
    assert value(metrics, "cascade_alerts_total", alert="pipeline_stuck", severity="critical") == 0
    slo = {"slo": "end_to_end", "mode": "same_day"}
    assert value(metrics, "cascade_slo_dates_total", **slo, result="missed") == 0
    assert value(metrics, "cascade_slo_end_to_end_seconds_count", mode="overnight") == 0
    _, alert_samples = families(metrics)["cascade_alerts"]
    assert len([s for s in alert_samples if s.name.endswith("_total")]) == len(ALERT_NAMES) * 4
    _, slo_samples = families(metrics)["cascade_slo_dates"]
    assert len([s for s in slo_samples if s.name.endswith("_total")]) == len(SLO_NAMES) * len(MODES) * 2


def test_compliance_gauge_has_no_series_until_reported_since_zero_would_mean_every_date_missed(
    metrics: Metrics,
) -> None:
    _, samples = families(metrics)["cascade_slo_compliance_ratio"]
    assert samples == []


def test_alerts_are_counted_by_name_and_lower_case_severity(metrics: Metrics) -> None:
    metrics.alert_raised("manual_intervention_required", "CRITICAL")
    metrics.alert_raised("manual_intervention_required", "critical")
    metrics.alert_raised("slo_at_risk", "WARNING")
    name = "cascade_alerts_total"
    assert value(metrics, name, alert="manual_intervention_required", severity="critical") == 2
    assert value(metrics, name, alert="slo_at_risk", severity="warning") == 1
    assert value(metrics, name, alert="slo_at_risk", severity="critical") == 0


def test_alert_names_and_severities_outside_the_known_sets_are_reported_as_other(metrics: Metrics) -> None:
    metrics.alert_raised("a brand new alert 2025-12-31", "CRITICAL")
    metrics.alert_raised("pipeline_stuck", "PANIC")
    name = "cascade_alerts_total"
    assert value(metrics, name, alert="other", severity="critical") == 1
    assert value(metrics, name, alert="pipeline_stuck", severity="other") == 1
    _, samples = families(metrics)["cascade_alerts"]
    assert {s.labels["alert"] for s in samples} == ALERT_NAMES | {"other"}
    assert {s.labels["severity"] for s in samples} == ALERT_SEVERITIES | {"other"}


# How alerts are raised in the code: `alert(state, "name", ...)` in the router, `RaiseAlert(alert="name")`.
_RAISED_NAME = re.compile(r'\balert\(\s*\w+,\s*"(\w+)"|\balert="(\w+)"|RaiseAlert\(\s*"(\w+)"')


def test_every_alert_name_raised_in_the_code_is_a_known_label_value() -> None:
    root = Path(__file__).resolve().parents[2]
    raised = {
        next(group for group in match.groups() if group)
        for package in ("router", "ops")
        for source in (root / package).rglob("*.py")
        for match in _RAISED_NAME.finditer(source.read_text())
    }
    assert {"unknown_processor", "self_heal", "circuit_open", "alerts_suppressed"} <= raised
    assert raised <= ALERT_NAMES


def test_slo_outcomes_are_counted_per_objective_mode_and_result(metrics: Metrics) -> None:
    metrics.slo_outcome("end_to_end", "same_day", met=True)
    metrics.slo_outcome("end_to_end", "same_day", met=False)
    metrics.slo_outcome("end_to_end", "same_day", met=False)
    metrics.slo_outcome("cascade_success_rate", "overnight", met=True)
    name = "cascade_slo_dates_total"
    assert value(metrics, name, slo="end_to_end", mode="same_day", result="met") == 1
    assert value(metrics, name, slo="end_to_end", mode="same_day", result="missed") == 2
    assert value(metrics, name, slo="cascade_success_rate", mode="overnight", result="met") == 1


def test_slo_names_and_modes_outside_the_known_sets_are_reported_as_other(metrics: Metrics) -> None:
    metrics.slo_outcome("latency_p99", "same_day", met=False)
    metrics.slo_outcome("quality", "weekly", met=True)
    metrics.slo_compliance("made_up", 0.5)
    metrics.end_to_end("weekly", 60.0)
    name = "cascade_slo_dates_total"
    assert value(metrics, name, slo="other", mode="same_day", result="missed") == 1
    assert value(metrics, name, slo="quality", mode="other", result="met") == 1
    assert value(metrics, "cascade_slo_compliance_ratio", slo="other") == 0.5
    assert value(metrics, "cascade_slo_end_to_end_seconds_count", mode="other") == 1


def test_slo_compliance_follows_the_latest_ratio_per_objective(metrics: Metrics) -> None:
    metrics.slo_compliance("cascade_success_rate", 0.97)
    metrics.slo_compliance("cascade_success_rate", 0.93)
    metrics.slo_compliance("self_heal_share", 0.85)
    assert value(metrics, "cascade_slo_compliance_ratio", slo="cascade_success_rate") == 0.93
    assert value(metrics, "cascade_slo_compliance_ratio", slo="self_heal_share") == 0.85


def test_end_to_end_latency_lands_in_the_bucket_of_its_objective(metrics: Metrics) -> None:
    metrics.end_to_end("same_day", 7000.0)  # just inside the 2 h same-day objective
    metrics.end_to_end("same_day", 7300.0)  # just outside it
    metrics.end_to_end("overnight", -5.0)  # clock skew between instances: never a negative observation
    name = "cascade_slo_end_to_end_seconds"
    assert value(metrics, f"{name}_bucket", mode="same_day", le="5400.0") == 0
    assert value(metrics, f"{name}_bucket", mode="same_day", le="7200.0") == 1
    assert value(metrics, f"{name}_bucket", mode="same_day", le="10800.0") == 2
    assert value(metrics, f"{name}_bucket", mode="same_day", le="86400.0") == 2
    assert value(metrics, f"{name}_sum", mode="overnight") == 0.0
    assert value(metrics, f"{name}_bucket", mode="overnight", le="600.0") == 1


def test_dates_at_risk_follows_the_latest_count(metrics: Metrics) -> None:
    assert value(metrics, "cascade_dates_at_risk") == 0
    metrics.dates_at_risk(3)
    metrics.dates_at_risk(1)
    assert value(metrics, "cascade_dates_at_risk") == 1
