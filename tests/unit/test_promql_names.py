"""tests/support/promql.py: the metric names it finds in an expression, and the names a registry exposes."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tests.support.promql import exported_sample_names, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("cascade_dates_at_risk", {"cascade_dates_at_risk"}),
        ('absent(up{job="cascade"})', {"up"}),
        (
            "histogram_quantile(0.99, sum by (le, transition) (rate(a_seconds_bucket[5m]))) > 30",
            {"a_seconds_bucket"},
        ),
        ("sum(rate(a_total[5m])) by (le) / on () group_left sum(rate(b_total[5m]))", {"a_total", "b_total"}),
        (
            '(sum(increase(e_total{status="routed"}[24h])) or vector(0)) == 0\n'
            "and on () (month() >= 10 or month() <= 6)",
            {"e_total"},
        ),
        ('g{transition=~"$transition", x="}{[("} > bool 1e3 * 36', {"g"}),
        ("rate(c_total[$__rate_interval] offset 1d) and ${other} unless d", {"c_total", "d"}),
        ('label_replace(h, "dst", "$1", "src", "(.*)")', {"h"}),
        ("time() - max(cascade:recorded:rate5m > 0)", {"cascade:recorded:rate5m"}),
        ("max_over_time(k[1h:5m]) AND Inf", {"k"}),
    ],
)
def test_finds_the_metric_names_of_an_expression_and_nothing_else(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_exported_names_include_labelled_metrics_without_series_and_each_types_suffixes() -> None:
    registry = CollectorRegistry()
    Counter("c_things_total", "help", ["label"], registry=registry)
    Gauge("g_level", "help", registry=registry)
    Histogram("h_seconds", "help", ["label"], registry=registry)
    assert exported_sample_names(registry) == {
        "c_things_total",
        "g_level",
        "h_seconds_bucket",
        "h_seconds_sum",
        "h_seconds_count",
    }
