"""The README against the code: the lists a newcomer relies on must not drift from what exists.

Only what can be checked mechanically: every module named in the layout, every setting in the configuration
table, every metric in the metrics list, and the `cascade status` example being what the command prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ops.cli import main
from ops.metrics import Metrics
from ops.settings import CLIENT_VARIABLES, env_names

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LAYOUT_DIRS = ["router", "policies", "views", "adapters", "ops", "ops/web", "bench", "tests/support"]


def section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def modules(directory: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / directory).glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("directory", LAYOUT_DIRS)
def test_the_layout_names_every_module(directory: str) -> None:
    words = set(re.findall(r"[a-z_]+", section("## Layout")))

    assert [m for m in modules(directory) if m not in words] == []


def test_the_configuration_table_lists_every_variable_the_settings_read() -> None:
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section("## Running the router (`cascade run`)")))
    variables = {name for names in env_names().values() for name in names} | CLIENT_VARIABLES

    assert sorted(variables - documented) == []


def test_the_metrics_list_names_every_cascade_metric() -> None:
    metrics = Metrics(CollectorRegistry())
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    ours = {name for name in names if name.startswith("cascade_") and not name.endswith("_created")}

    assert ours, "no cascade_ metric found: the registry is not the daemon's"
    assert sorted(n for n in ours if n not in README) == []


def test_the_status_example_is_what_the_command_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = re.search(r"```\n\$ cascade status 2026-02-03 --timeline tl.jsonl\n(.*?)```", README, re.S)
    assert example is not None, "the README's `cascade status` example is gone"
    shown = [line for line in example.group(1).splitlines() if line != "..."]
    timeline = tmp_path / "tl.jsonl"
    events = str(ROOT / "examples" / "critical_never_reports.jsonl")
    assert main(["replay", events, "--quiet", "--out", str(timeline)]) == 0
    capsys.readouterr()

    assert main(["status", "2026-02-03", "--timeline", str(timeline)]) == 0

    printed = capsys.readouterr().out.splitlines()
    assert [line for line in shown if line not in printed] == []
