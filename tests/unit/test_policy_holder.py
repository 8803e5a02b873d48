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
    assert result.problems[0].startswith(f"{policy_file}: cannot read")


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


def _prefix_in_the_timezone(text: str) -> str:
    """The file as a reader sees it while a writer is half-way through the timezone's value."""
    # Cut to `timezone: America`: zoneinfo opens that as a file, and it is a directory.
    return text[: text.index("timezone: America/") + len("timezone: America")]


@pytest.mark.parametrize(
    "damage",
    ["empty", "half-written", "cut in the timezone", "cut in a utf-8 character", "missing", "a directory"],
)
def test_every_kind_of_unreadable_file_is_a_clean_rejection(
    policy_file: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    holder = holder_for(policy_file)
    before = holder.current()
    if damage == "empty":
        policy_file.write_bytes(b"")
    elif damage == "half-written":
        policy_file.write_text(DEFAULT_TEXT[: len(DEFAULT_TEXT) // 2], encoding="utf-8")
    elif damage == "cut in the timezone":
        policy_file.write_text(_prefix_in_the_timezone(DEFAULT_TEXT), encoding="utf-8")
    elif damage == "cut in a utf-8 character":
        policy_file.write_bytes(DEFAULT_TEXT.encode() + "# é".encode()[:-1])
    elif damage == "missing":
        policy_file.unlink()
    else:
        policy_file.unlink()
        policy_file.mkdir()

    with caplog.at_level(logging.ERROR, logger="cascade.policy"):
        result = holder.reload()

    assert not result.ok and result.problems
    assert all(problem.startswith(str(policy_file)) for problem in result.problems)
    assert holder.current() is before and holder.generation == 0
    assert "policy reload rejected" in caplog.text and "Traceback" not in caplog.text


def test_a_file_replaced_while_it_is_read_never_fails_a_reload_with_an_exception(policy_file: Path) -> None:
    """A writer rewrites the file in place (truncate, then write in pieces) while reloads run."""
    holder = holder_for(policy_file)
    data = DEFAULT_TEXT.replace("max_per_window: 5", "max_per_window: 6").encode()
    done = threading.Event()

    def rewrite() -> None:
        while not done.is_set():
            with policy_file.open("wb", buffering=0) as out:
                for at in range(0, len(data), 97):
                    out.write(data[at : at + 97])

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        results = [holder.reload() for _ in range(150)]
    finally:
        done.set()
        writer.join()
    assert all(r.ok or r.problems for r in results)
    assert holder.current().alerts.max_per_window in (5, 6)
