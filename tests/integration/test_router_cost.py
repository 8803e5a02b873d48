"""`bench.router_cost` on a tiny load (two game dates): both systems route everything and every count is there.

No timing assertions: the bench is a measurement; this only keeps the harness working (fresh emulators per
system, the instrumented `cascade run` and relay, the load, the watcher, the counters)."""

from __future__ import annotations

import pytest

from bench.router_cost import Options, run

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(240)]


def test_cost_bench_sees_every_key_triggered_and_counts_the_requests_of_cascade_and_the_relay() -> None:
    options = Options(dates=2, warmup_dates=1, rate=100.0, instances=1, drain_timeout_s=60.0)

    results = run(options, ("relay", "cascade"))

    cascade, relay = results["cascade"], results["relay"]
    for result in (cascade, relay):
        assert result["complete"], result
        assert result["keys_expected"] > 0
        assert result["keys_missing"] == 0
        assert result["latency_ms"]["samples"] == result["keys_expected"]
        assert result["events"] == results["options"]["events"] > 0
        assert result["cpu_s"] > 0
        assert result["pubsub_requests"]["pull"] > 0
        assert result["pubsub_requests"]["acknowledge"] > 0
        assert result["pubsub_requests"]["publish.trigger"] > 0
    # One trigger id per key, each published while handling the message that completed the key.
    assert cascade["warmup_complete"] and relay["warmup_complete"]
    assert cascade["round_trips"]["count"] == cascade["keys_expected"]
    assert cascade["untraced_triggers"] == 0
    assert cascade["round_trips"]["max"] >= 2  # at least one store call, then the publish
    assert cascade["firestore_per_event"] > 0
    # The relay republishes every message in one request, with nothing before it.
    assert relay["round_trips"] == {**relay["round_trips"], "count": relay["events"], "max": 1}
    assert relay["firestore_rpcs"] == {}
