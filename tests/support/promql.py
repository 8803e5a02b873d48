"""Which metric names a PromQL expression reads, and which ones a `Metrics` registry can expose.

Good enough for the expressions in ops/monitoring (alert rules, Grafana panels), not a PromQL parser: it
removes what cannot hold a metric name (strings, label matchers, ranges, the label lists of by/without/on/
ignoring/group_left/group_right, Grafana variables), then keeps the identifiers that are neither a function
call, a keyword nor part of a number.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GRAFANA_VARIABLES = re.compile(r"\$\{[^}]*\}|\$\w+")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE)
# Not preceded by a word character, ':' or '.', so the 'e' of 1e3 and the 'd' of an offset's 1d never count.
_IDENTIFIERS = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"inf", "nan"}
)

# The sample names prometheus_client writes for one family, by its type.
_SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def metric_names(expr: str) -> set[str]:
    """The metric names `expr` selects (recording-rule names included; functions and keywords not)."""
    text = _STRINGS.sub(" ", expr)
    text = _GRAFANA_VARIABLES.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIERS.finditer(text)
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS
    }


def exported_sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a scrape of `registry` can contain, also for labelled metrics with no series yet.

    `collect()` names a counter's family without `_total` and a histogram's without its suffixes."""
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",))
    }
