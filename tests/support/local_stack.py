"""`make local-stack` (`python -m tests.support.local_stack`): the docker-compose flow, without Docker.

docker-compose.yml runs the emulators, `cascade provision`, `cascade run` and `cascade publish` as containers.
Here the same steps run as processes on this machine, with the emulators the test suite uses
(`tests/support/`), each on a free port:

  1. start the Pub/Sub, Firestore and BigQuery emulators; print the `export` lines to reach them;
  2. `cascade provision --project cascade-local`;
  3. start `cascade run` with the daemon's environment and wait until /healthz answers;
  4. `cascade publish EVENTS --project cascade-local --speed 600` (the overnight day in about 12 s);
  5. wait until the router has received every message and /status stops changing, print /status;
  6. SIGTERM the router (it should drain and exit 0), stop the emulators.

Everything started is stopped on the way out, also after a failure or Ctrl-C. The router's log and the audit
spool stay in a temporary directory whose path is printed. Run from the repository root (the BigQuery
launcher is `-m tests.support.bigquery_emulator`). A developer's tool built on the test suite's emulator
helpers, so it lives here and not in `ops/`, which ships in the wheel without `tests/`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from ops.replay import read_recording
from tests.support.bigquery_emulator import bigquery_emulator
from tests.support.emulators import HOST, Emulator, firestore_emulator, free_port, pubsub_emulator, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "cascade-local"
ROUTER_START_S = 60.0
ROUTER_STOP_S = 15.0  # the daemon drains within CASCADE_SHUTDOWN_GRACE_S (8 s by default)
PROCESSING_S = 30.0
SETTLE_S = 1.0
EXPORTED = (
    "CASCADE_PROJECT",
    "PORT",
    "PUBSUB_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "BIGQUERY_EMULATOR_HOST",
    "CASCADE_AUDIT_SPOOL_PATH",
)


class StackError(RuntimeError):
    """A step failed; the message says which and why."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # `kill` (or make being stopped) ends this process the way Ctrl-C does, so the cleanup below still runs.
    signal.signal(signal.SIGTERM, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="cascade-local-"))
    print(f"# work directory (router log, audit spool): {workdir}")
    with contextlib.ExitStack() as cleanup:  # stops what was started, in reverse order, whatever happens
        try:
            return _run(args, workdir, cleanup)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping everything", file=sys.stderr)
            return 130
        except StackError as exc:
            print(f"local-stack: {exc}", file=sys.stderr)
            return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.local_stack",
        description="emulators + cascade provision + cascade run + cascade publish, as processes",
    )
    parser.add_argument("--events", type=Path, default=ROOT / "examples/overnight_full_cascade.jsonl")
    parser.add_argument("--speed", default="600", help="cascade publish --speed (default 600)")
    parser.add_argument("--policy", type=Path, help="policy file for cascade run and provision")
    parser.add_argument("--port", type=int, default=0, help="router port (default: a free one)")
    parser.add_argument("--hold", action="store_true", help="keep everything running until Ctrl-C")
    return parser


def _run(args: argparse.Namespace, workdir: Path, cleanup: contextlib.ExitStack) -> int:
    with args.events.open(encoding="utf-8") as lines:
        expected = len(read_recording(lines, str(args.events)))

    emulators = {
        "pubsub": pubsub_emulator(),
        "firestore": firestore_emulator(),
        "bigquery": bigquery_emulator(),
    }
    for name, emulator in emulators.items():
        cleanup.callback(emulator.stop)  # registered first: a Ctrl-C during start still stops it
        try:
            emulator.start()
        except RuntimeError as exc:
            raise StackError(str(exc)) from exc
        print(f"# {name} emulator on {emulator.host_port} (ready in {emulator.started_in_s:.1f} s)")

    port = args.port or free_port()
    env = _environment(emulators, port, workdir)
    for name in EXPORTED:
        print(f"export {name}={env[name]}")
    policy = ["--policy", str(args.policy)] if args.policy else []

    _step("provision", ["provision", "--project", PROJECT, *policy], env)

    router = _start_router(policy, env, workdir / "router.log")
    cleanup.callback(_stop, router)
    base = f"http://{HOST}:{port}"
    if not wait_until(
        lambda: router.poll() is not None or _get(f"{base}/healthz") is not None, ROUTER_START_S
    ):
        raise StackError(
            f"cascade run did not answer {base}/healthz in {ROUTER_START_S:.0f} s" + _tail(workdir)
        )
    if router.poll() is not None:
        raise StackError(f"cascade run exited with {router.returncode}" + _tail(workdir))
    print(f"# router on {base} (pid {router.pid})")

    _step(
        "publish", ["publish", str(args.events), "--relive", "--project", PROJECT, "--speed", args.speed], env
    )

    if not wait_until(lambda: _received(base) >= expected, PROCESSING_S, interval_s=0.2):
        print(
            f"# warning: the router reports {_received(base):.0f} of {expected} messages received",
            file=sys.stderr,
        )
    status = _settled_status(base)
    print(json.dumps(status, indent=2) if status is not None else "# GET /status did not answer")
    # /status lists only the last CASCADE_RECENT_DAYS game dates before today, so a recorded day from long
    # ago does not show there; the counters always do.
    counters = _counters(base)
    print(
        "# " + ", ".join(f"{name.removeprefix('cascade_')}={value:.0f}" for name, value in counters.items())
    )

    if args.hold:
        print(f"# running; Ctrl-C to stop (router log: {workdir / 'router.log'})")
        router.wait()
    code = _stop(router)
    print(f"# router exited with {code} after SIGTERM")
    return 0 if code == 0 and status is not None else 1


def _environment(emulators: dict[str, Emulator], port: int, workdir: Path) -> dict[str, str]:
    """What docker-compose gives the router: the project, the port, the emulators, a spool path."""
    return {
        **os.environ,
        "CASCADE_PROJECT": PROJECT,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "PORT": str(port),
        "PUBSUB_EMULATOR_HOST": emulators["pubsub"].host_port,
        "FIRESTORE_EMULATOR_HOST": emulators["firestore"].host_port,
        "BIGQUERY_EMULATOR_HOST": emulators["bigquery"].host_port,
        "CASCADE_AUDIT_SPOOL_PATH": str(workdir / "audit.spool.jsonl"),
        "PYTHONUNBUFFERED": "1",
    }


def _cascade(*argv: str) -> list[str]:
    return [sys.executable, "-m", "ops.cli", *argv]


def _step(name: str, argv: list[str], env: dict[str, str]) -> None:
    print(f"# cascade {' '.join(argv)}", flush=True)
    result = subprocess.run(_cascade(*argv), env=env, cwd=ROOT, check=False)
    if result.returncode != 0:
        raise StackError(f"cascade {name} exited with {result.returncode}")


def _start_router(policy: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    print(f"# cascade run {' '.join(policy)} (log: {log_path})", flush=True)
    with log_path.open("wb") as log:
        # Its own session: Ctrl-C here does not reach it; it is stopped with SIGTERM, as Cloud Run would.
        return subprocess.Popen(
            _cascade("run", *policy),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, wait for the drain, SIGKILL if it outlives ROUTER_STOP_S. The exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=ROUTER_STOP_S)
        except subprocess.TimeoutExpired:
            print(f"# router still running {ROUTER_STOP_S:.0f} s after SIGTERM: SIGKILL", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def _get(url: str) -> str | None:
    """The body of a 2xx answer, else None."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _counters(base: str) -> dict[str, float]:
    """Every `cascade_*_total` counter on /metrics, summed over its labels (empty: /metrics is silent)."""
    text = _get(f"{base}/metrics")
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text or ""):
        for sample in family.samples:
            if sample.name.startswith("cascade_") and sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _received(base: str) -> float:
    return _counters(base).get("cascade_events_received_total", 0.0)


def _settled_status(base: str) -> dict[str, Any] | None:
    """/status once its keys stopped changing for SETTLE_S (a trigger goes out just after its last input);
    after 10 * SETTLE_S, whatever it answers then."""
    seen = _Watch()
    wait_until(lambda: seen.steady(_get(f"{base}/status")), 10 * SETTLE_S, interval_s=0.2)
    return seen.body


class _Watch:
    """Remembers the last /status body and since when (monotonic) it has not changed."""

    def __init__(self) -> None:
        self.body: dict[str, Any] | None = None
        self._since = time.monotonic()

    def steady(self, text: str | None) -> bool:
        body = json.loads(text) if text is not None else None
        if _keys(body) != _keys(self.body):
            self._since = time.monotonic()
        self.body = body
        return body is not None and time.monotonic() - self._since >= SETTLE_S


def _keys(status: dict[str, Any] | None) -> object:
    return None if status is None else status.get("keys")


def _tail(workdir: Path) -> str:
    log = workdir / "router.log"
    text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    return f"\n--- router log ({log}) ---\n{text}" if text else ""


if __name__ == "__main__":
    sys.exit(main())
