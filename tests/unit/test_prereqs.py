"""The check `make test` runs first (tests/support/prereqs.py), against a machine described by lookups."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.prereqs import Lookups, firestore_jar, java_major, missing, pubsub_script, report

SDK = Path("/opt/sdk")
JAVA_17 = 'openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6)'


def machine(files: set[Path], java: str | None = "/usr/bin/java", version: str = JAVA_17) -> Lookups:
    return Lookups(
        is_file=lambda path: path in files,
        which=lambda name: java if name == "java" else None,
        java_version=lambda path: version,
    )


EVERYTHING = {pubsub_script(SDK), firestore_jar(SDK)}


def test_a_complete_machine_has_nothing_missing() -> None:
    assert missing(SDK, machine(EVERYTHING)) == []


def test_a_bare_machine_is_told_each_piece_and_how_to_get_it() -> None:
    problems = missing(SDK, machine(set(), java=None))
    assert [p.what.split(" (")[0] for p in problems] == [
        "the Pub/Sub emulator",
        "the Firestore emulator",
        "Java 17 or newer",
    ]
    hows = [p.how for p in problems]
    assert "apt-get install google-cloud-cli-pubsub-emulator" in hows[0]
    assert "gcloud components install pubsub-emulator" in hows[0]
    assert "apt-get install google-cloud-cli-firestore-emulator" in hows[1]
    assert "gcloud components install cloud-firestore-emulator" in hows[1]
    assert "openjdk-17-jre-headless" in hows[2]


@pytest.mark.parametrize("present", sorted(EVERYTHING))
def test_only_the_missing_emulator_is_named_with_its_path(present: Path) -> None:
    (problem,) = missing(SDK, machine({present}))
    (absent,) = EVERYTHING - {present}
    assert str(absent) in problem.what
    assert "CLOUDSDK_ROOT" in problem.how


def test_an_old_java_is_named_with_its_version() -> None:
    (problem,) = missing(SDK, machine(EVERYTHING, version='java version "1.8.0_392"'))
    assert "Java 8" in problem.what and "/usr/bin/java" in problem.what


def test_a_java_that_does_not_say_its_version_counts_as_missing() -> None:
    (problem,) = missing(SDK, machine(EVERYTHING, version=""))
    assert "unreadable version" in problem.what


@pytest.mark.parametrize(
    ("text", "major"),
    [
        (JAVA_17, 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ('java version "1.8.0_392"', 8),
        ("command not found", None),
    ],
)
def test_java_major_reads_both_version_styles(text: str, major: int | None) -> None:
    assert java_major(text) == major


def test_the_report_lists_every_problem_and_points_to_make_unit() -> None:
    text = report(missing(SDK, machine(set(), java=None)))
    assert text.count("get it:") == 3
    assert "make unit" in text
