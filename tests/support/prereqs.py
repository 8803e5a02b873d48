"""`python -m tests.support.prereqs`: what `make test` needs beyond the venv, checked before pytest starts.

The contract and integration tests start the official Pub/Sub and Firestore emulators from the Google Cloud
SDK (`tests/support/emulators.py`, under CLOUDSDK_ROOT, default /usr/lib/google-cloud-sdk) with Java. When one
is missing, pytest would fail dozens of tests with the same FileNotFoundError; this prints each missing piece
with how to get it and exits 1 instead. Silent, exit 0, when everything is there. (bqemulator, the BigQuery
emulator, is a dev dependency: `make setup` installs it.)

`make` runs this with the system python3 *before* `make setup`, so a machine that lacks the emulators hears
it before a minute of pip installs: this module and `tests.support.emulators` import the standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.emulators import SDK

MIN_JAVA = 17  # what the suite runs with (Debian's openjdk-17); the emulators of SDK 528 start on it
APT_REPO = "Google's apt repository, https://cloud.google.com/sdk/docs/install#deb"


@dataclass(frozen=True)
class Lookups:
    """How the machine is asked; tests pass their own."""

    is_file: Callable[[Path], bool]
    which: Callable[[str], str | None]
    java_version: Callable[[str], str]  # the text `java -version` prints, given java's path


@dataclass(frozen=True)
class Missing:
    what: str
    how: str


def pubsub_script(sdk: Path) -> Path:
    return sdk / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"


def firestore_jar(sdk: Path) -> Path:
    return sdk / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"


def missing(sdk: Path, lookups: Lookups) -> list[Missing]:
    found: list[Missing] = []
    other_sdk = f"or, for an SDK installed elsewhere, CLOUDSDK_ROOT=/path/to/google-cloud-sdk (now {sdk})"
    if not lookups.is_file(pubsub_script(sdk)):
        found.append(
            Missing(
                f"the Pub/Sub emulator ({pubsub_script(sdk)})",
                f"sudo apt-get install google-cloud-cli-pubsub-emulator (from {APT_REPO}); or "
                f"gcloud components install pubsub-emulator; {other_sdk}",
            )
        )
    if not lookups.is_file(firestore_jar(sdk)):
        found.append(
            Missing(
                f"the Firestore emulator ({firestore_jar(sdk)})",
                f"sudo apt-get install google-cloud-cli-firestore-emulator (from {APT_REPO}); or "
                f"gcloud components install cloud-firestore-emulator; {other_sdk}",
            )
        )
    found.extend(_java(lookups))
    return found


def _java(lookups: Lookups) -> list[Missing]:
    how = f"sudo apt-get install openjdk-{MIN_JAVA}-jre-headless (or any Java {MIN_JAVA}+ first on PATH)"
    java = lookups.which("java")
    if java is None:
        return [Missing(f"Java {MIN_JAVA} or newer (no `java` on PATH; both emulators run on it)", how)]
    major = java_major(lookups.java_version(java))
    if major is None or major < MIN_JAVA:
        found = "an unreadable version" if major is None else f"Java {major}"
        return [Missing(f"Java {MIN_JAVA} or newer ({java} is {found})", how)]
    return []


def java_major(version_text: str) -> int | None:
    """17 from `openjdk version "17.0.15" 2025-04-15`, 8 from the old style `java version "1.8.0_392"`."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if match is None:
        return None
    first, second = int(match[1]), match[2]
    return int(second) if first == 1 and second is not None else first


def report(problems: list[Missing]) -> str:
    lines = ["make test needs, and this machine lacks:"]
    for problem in problems:
        lines += [f"  - {problem.what}", f"      get it: {problem.how}"]
    lines.append("(`make unit` runs the unit tests, which need none of these.)")
    return "\n".join(lines)


def _java_version(java: str) -> str:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stderr + result.stdout  # java prints its version on stderr


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and (path.suffix == ".jar" or os.access(path, os.X_OK))


MACHINE = Lookups(is_file=_is_executable_file, which=shutil.which, java_version=_java_version)


def main() -> int:
    problems = missing(SDK, MACHINE)
    if problems:
        print(report(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
