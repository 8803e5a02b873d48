"""Policy reload: a valid file is swapped in with a readable diff; anything else keeps the running policy."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from ops.policy_file import default_policy_text, load_policy
from ops.policy_holder import PolicyHolder, diff, shorten
from policies.model import Mode

DEFAULT_TEXT, _ = default_policy_text()


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(DEFAULT_TEXT, encoding="utf-8")
    return path


def holder_for(path: Path) -> PolicyHolder:
    return PolicyHolder(load_policy(path), path)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in the test policy"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_a_valid_change_is_swapped_in_with_its_diff(policy_file: Path) -> None:
    holder = holder_for(policy_file)
    before = holder.current()
    edit(policy_file, "    completeness: 0.8\n", "    completeness: 0.7\n")
    edit(policy_file, "max_input_age_s: 43200", "max_input_age_s: 7200")

    result = holder.reload()

    assert result.ok
    assert result.problems == ()
    assert result.changes == (
        "max_input_age_s: 43200 -> 7200",
        "modes.same_day.completeness: 0.8 -> 0.7",
    )
    assert holder.current() is not before
    assert holder.current().modes[Mode.SAME_DAY].completeness == 0.7
    assert before.modes[Mode.SAME_DAY].completeness == 0.8  # a step holding the old object is unaffected
    assert holder.generation == 1


def test_an_invalid_file_keeps_the_old_policy_and_names_file_line_and_field(policy_file: Path) -> None:
    holder = holder_for(policy_file)
    before = holder.current()
    edit(policy_file, "    completeness: 0.8\n", "    completeness: 1.8\n")
    line = 1 + policy_file.read_text(encoding="utf-8").splitlines().index("    completeness: 1.8")

    result = holder.reload()

    assert not result.ok
    assert holder.current() is before
    assert result.changes == ()
    assert result.error is not None
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"{policy_file}:{line}: modes.same_day.completeness: ")
    assert "less than or equal to 1" in result.problems[0]
    assert holder.generation == 0


def test_an_unknown_key_is_rejected_with_its_line(policy_file: Path) -> None:
    holder = holder_for(policy_file)
    before = holder.current()
    edit(policy_file, "max_input_age_s: 43200", "max_input_age_s: 43200\nmax_input_age: 60")

    result = holder.reload()

    assert not result.ok
    assert holder.current() is before
    assert result.problems[0].startswith(f"{policy_file}:")
    assert ": max_input_age: Extra inputs are not permitted" in result.problems[0]


def test_an_unreadable_file_keeps_the_old_policy(policy_file: Path) -> None:
    holder = holder_for(policy_file)
    before = holder.current()
    policy_file.unlink()

    result = holder.reload()

    assert not result.ok
    assert holder.current() is before
    assert result.problems[0].startswith(f"{policy_file}: <root>: cannot read")


def test_a_file_that_is_not_yaml_keeps_the_old_policy(policy_file: Path) -> None:
    holder = holder_for(policy_file)
    before = holder.current()
    policy_file.write_text("modes: [unclosed\n", encoding="utf-8")

    result = holder.reload()

    assert not result.ok
    assert holder.current() is before
    assert "not valid YAML" in result.problems[0]


def test_an_unchanged_file_reloads_with_an_empty_diff(policy_file: Path) -> None:
    holder = holder_for(policy_file)

    result = holder.reload()

    assert result.ok
    assert result.changes == ()


def test_the_built_in_policy_reloads_when_there_is_no_file() -> None:
    holder = PolicyHolder(load_policy(None), None)

    result = holder.reload()

    assert (result.ok, result.changes, result.source) == (True, (), "built-in policy")


def test_reload_outcomes_are_logged(policy_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = holder_for(policy_file)
    edit(policy_file, "    completeness: 0.8\n", "    completeness: 0.7\n")
    caplog.set_level(logging.INFO, logger="cascade.policy")

    holder.reload()
    policy_file.write_text("version: [", encoding="utf-8")
    holder.reload()

    [swapped, rejected] = caplog.records
    assert swapped.levelno == logging.INFO
    assert swapped.__dict__["changes"] == ["modes.same_day.completeness: 0.8 -> 0.7"]
    assert rejected.levelno == logging.ERROR
    assert str(policy_file) in rejected.getMessage()


def test_concurrent_reloads_each_diff_against_the_policy_they_replace(policy_file: Path) -> None:
    holder = holder_for(policy_file)
    edit(policy_file, "    completeness: 0.8\n", "    completeness: 0.7\n")
    results = []

    threads = [threading.Thread(target=lambda: results.append(holder.reload())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(len(r.changes) for r in results) == [0, 0, 0, 1]
    assert holder.generation == 4


def test_diff_reports_added_removed_and_nested_changes_by_dotted_path() -> None:
    old = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": {"deep": True}}
    new = {"a": 1, "b": {"c": [1, 2, 3], "d": "x", "e": None}, "fresh": 5}

    assert diff(old, new) == [
        "b.c: [1, 2] -> [1, 2, 3]",
        "b.e: added None",
        "fresh: added 5",
        "gone: removed (was {'deep': True})",
    ]


def test_long_values_are_shortened() -> None:
    text = shorten("x" * 500)

    assert len(text) == 60
    assert text.endswith("…")
    assert shorten(0.7) == "0.7"
