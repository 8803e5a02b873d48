"""Starting and stopping the real Google emulators for the adapter tests.

Each emulator runs as a child process in its own session (so its Java children die with it), on a free port,
with its output in a log file that a failing start prints. Start is polled with a deadline, never slept.
Standard library only: `tests.support.prereqs` imports it before the venv exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SDK = Path(os.environ.get("CLOUDSDK_ROOT", "/usr/lib/google-cloud-sdk"))
HOST = "127.0.0.1"
PROJECT = "cascade-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # loopback only
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError):
        return False


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll `predicate` until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


@dataclass
class Emulator:
    name: str
    command: list[str]
    port: int
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 60.0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    started_in_s: float | None = None

    @property
    def host_port(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> Emulator:
        handle, name = tempfile.mkstemp(prefix=f"cascade-{self.name}-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)
        began = time.monotonic()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        if not wait_until(self._ready, self.start_timeout_s):
            output = self.log_path.read_text(errors="replace")[-4000:]
            self.stop()
            raise RuntimeError(f"{self.name} emulator did not answer {self.health_url} in time:\n{output}")
        self.started_in_s = time.monotonic() - began
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            return False
        return http_ok(self.health_url)

    def freeze(self) -> None:
        """SIGSTOP: it still accepts connections and never answers (a hung backend)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.thaw()  # a stopped process would not act on the SIGTERM until continued
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with_kill = self.process.poll() is None
            if with_kill:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def pubsub_emulator() -> Emulator:
    port = free_port()
    script = SDK / "platform/pubsub-emulator/bin/cloud-pubsub-emulator"
    return Emulator(
        name="pubsub",
        command=[str(script), f"--host={HOST}", f"--port={port}"],
        port=port,
        health_url=f"http://{HOST}:{port}/",
    )


def firestore_emulator(port: int | None = None) -> Emulator:
    """On `port` (a restart where an earlier one ran), else on a free port."""
    port = port or free_port()
    jar = SDK / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar"
    return Emulator(
        name="firestore",
        command=[
            "java",
            "-Duser.language=en",
            "-cp",
            str(jar),
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
            "start",
            f"--host={HOST}",
            f"--port={port}",
        ],
        port=port,
        health_url=f"http://{HOST}:{port}/",
    )


def running(emulator: Emulator) -> Iterator[Emulator]:
    """For a fixture: started, yielded, stopped afterwards (also when the test failed; a frozen one too)."""
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
