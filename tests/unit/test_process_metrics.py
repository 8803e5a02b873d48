"""The process' own metrics (`process_*`, `python_gc_*`, `python_info`) on the daemon's /metrics: the daemon
serves its own registry, and prometheus_client registers these only on its default one."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ops.daemon import Daemon
from ops.metrics import Metrics
from ops.settings import load_settings

RUNTIME_SAMPLES = {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "python_gc_objects_collected_total",
    "python_gc_collections_total",
    "python_info",
}


def sample_names(exposition: bytes) -> set[str]:
    return {s.name for f in text_string_to_metric_families(exposition.decode()) for s in f.samples}


def test_process_metrics_are_exposed_beside_the_cascade_ones() -> None:
    names = sample_names(Metrics(CollectorRegistry(), process_metrics=True).render())
    assert names >= RUNTIME_SAMPLES
    assert "cascade_duplicates_suppressed_total" in names


def test_a_registry_built_for_a_test_holds_only_cascade_metrics() -> None:
    names = sample_names(Metrics(CollectorRegistry()).render())
    assert not {name for name in names if not name.startswith("cascade_")}


def test_two_registries_can_both_expose_the_process_metrics() -> None:
    """A second registry (a second daemon in one process, as in tests) must not fail as a duplicate."""
    first = Metrics(CollectorRegistry(), process_metrics=True)
    second = Metrics(CollectorRegistry(), process_metrics=True)
    assert sample_names(first.render()) >= RUNTIME_SAMPLES
    assert sample_names(second.render()) >= RUNTIME_SAMPLES


async def test_the_daemon_serves_the_process_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    # Building the daemon opens no connection; the Firestore client only needs to know it has no credentials.
    emulators = {name: "127.0.0.1:9" for name in ("PUBSUB", "FIRESTORE", "BIGQUERY")}
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulators["FIRESTORE"])
    environ = {f"{name}_EMULATOR_HOST": host for name, host in emulators.items()}
    settings = load_settings({"CASCADE_PROJECT": "cascade-unit", **environ})
    async with aiohttp.ClientSession() as session:
        daemon = Daemon(settings, session)
        assert sample_names(daemon.metrics.render()) >= RUNTIME_SAMPLES
