"""`cascade` as a subprocess with a controlled environment, for the tests of its start and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cascade(
    argv: list[str], env: dict[str, str], home: Path, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """`cascade ARGV` with only `env` (and PATH, an empty HOME): no credentials or emulators leak in."""
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def critical_message(log: str) -> str:
    """`cascade run` logs (to stdout, JSON lines) its last word with severity CRITICAL."""
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    [critical] = [r for r in records if r["severity"] == "CRITICAL"]
    return str(critical["message"])
