"""The processes of a chaos run: the three emulators (started once per run) and, per trial, a fresh project
with its own `cascade run` instances.

Trials share the emulators but nothing else: each one gets a new project (its own topics, subscriptions and
BigQuery dataset), a new Firestore collection and a new work directory (policy, spools, one log per daemon
start), like the `stack` fixture of the integration tests. Every daemon runs in its own session, so a Ctrl-C
in the terminal reaches only the harness, which then stops them itself (`TrialStack.close`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from adapters.pubsub_admin import PubSubAdmin
from adapters.resource_names import ResourceNames
from ops.policy_file import default_policy_text, load_policy
from ops.provision import Endpoints, provision_all
from policies.model import Policy
from tests.support.bigquery_emulator import bigquery_emulator
from tests.support.emulators import Emulator, firestore_emulator, free_port, http_ok, pubsub_emulator

ROOT = Path(__file__).resolve().parents[1]
DATASET = "cascade_audit"
STOP_TIMEOUT_S = 15.0  # SIGTERM, then SIGKILL: the daemon must be gone within its 8 s grace
# The daemons run on the wall clock: the overnight deadlines as late as the policy allows (3 days after the
# game date, 23:00 ET: for a date 3 UTC days old that is still hours ahead), so that no fallback or
# self-heal fires during a trial and opens a transition before its inputs are all in.
OVERNIGHT_DEADLINES = {
    'fallback: {day_offset: 1, at: "06:00"}': 'fallback: {day_offset: 3, at: "23:00"}',
    'self_heal: {day_offset: 1, at: "08:00"}': 'self_heal: {day_offset: 3, at: "23:30"}',
}
# A Firestore stall of more than ~15 s (10 s timeout + 5 s) puts the instances in the outage mode (README,
# "When Firestore is down"), so trials exercise it; the NBA policy waits 60 s.
FAST_OUTAGE = {"outage_after_s: 60": "outage_after_s: 5", "probe_every_s: 10": "probe_every_s: 2"}


@dataclass
class Backends:
    """The three emulators of a run."""

    pubsub: Emulator
    firestore: Emulator
    bigquery: Emulator

    def all(self) -> list[Emulator]:
        return [self.pubsub, self.firestore, self.bigquery]

    def ensure_bigquery(self) -> None:
        """bqemulator grows with data and has died in long runs: start a fresh one if it does not answer.
        (It is in memory, so the earlier trials' rows go with it; they are checked already.)"""
        if not http_ok(self.bigquery.health_url):
            self.bigquery.stop()
            self.bigquery = bigquery_emulator().start()


@contextlib.contextmanager
def running_backends() -> Iterator[Backends]:
    backends = Backends(pubsub_emulator(), firestore_emulator(), bigquery_emulator())
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(Emulator.start, backends.all()))
        yield backends
    finally:
        for emulator in backends.all():
            emulator.stop()  # continues a stopped (SIGSTOP) one first


def chaos_policy_path(directory: Path) -> Path:
    text = default_policy_text()[0]
    for old, new in (OVERNIGHT_DEADLINES | FAST_OUTAGE).items():
        if old not in text:
            raise RuntimeError(f"the default policy no longer has {old!r}; update chaos_stack.py")
        text = text.replace(old, new)
    path = directory / "chaos-policy.yaml"
    path.write_text(text)
    return path


@dataclass
class Daemon:
    """One `cascade run` instance; restarted under the same instance id (and spool) after a kill."""

    instance_id: str
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        log_path = self.workdir / f"{self.instance_id}.start{self.starts}.log"
        self.logs.append(log_path)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.cli", "run"],
                env={**self.env, "PORT": str(self.port)},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def ready(self) -> bool:
        return self.alive() and http_ok(f"http://127.0.0.1:{self.port}/readyz")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.alive():
            assert self.process is not None
            self._signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int | None:
        """SIGTERM (the daemon drains and spools), SIGKILL after STOP_TIMEOUT_S; its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def _signal(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


@dataclass
class TrialStack:
    project: str
    collection: str
    workdir: Path
    policy: Policy
    daemons: list[Daemon]
    endpoints: Endpoints

    @property
    def spools(self) -> list[Path]:
        return [self.workdir / f"{d.instance_id}.spool.jsonl" for d in self.daemons]

    def close(self) -> list[int | None]:
        """Stop every daemon (in parallel: each may take its grace period); their exit codes."""
        with ThreadPoolExecutor(max(1, len(self.daemons))) as pool:
            return list(pool.map(Daemon.stop, self.daemons))


async def open_trial(backends: Backends, policy_path: Path, workdir: Path, instances: int) -> TrialStack:
    """Provision a fresh project (topics, subscriptions, dataset, a watch subscription per trigger topic);
    the daemons are created, not started."""
    project = f"chaos-{uuid.uuid4().hex[:8]}"
    collection = f"dates_{uuid.uuid4().hex[:8]}"
    (workdir / "project").write_text(project)  # to clear its Firestore documents after the trial
    policy = load_policy(policy_path)
    endpoints = Endpoints.from_environment(
        {
            "PUBSUB_EMULATOR_HOST": backends.pubsub.host_port,
            "BIGQUERY_EMULATOR_HOST": backends.bigquery.host_port,
        }
    )
    await provision_all(project, policy, endpoints, ResourceNames(bigquery_dataset=DATASET))
    async with aiohttp.ClientSession() as session:
        admin = PubSubAdmin(project, session, endpoints.pubsub)
        for topic in trigger_topics(policy):
            await admin.ensure_subscription(watch_subscription(topic), topic, 10)
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "CASCADE_PROJECT": project,
        "PUBSUB_EMULATOR_HOST": backends.pubsub.host_port,
        "FIRESTORE_EMULATOR_HOST": backends.firestore.host_port,
        "BIGQUERY_EMULATOR_HOST": backends.bigquery.host_port,
        "CASCADE_POLICY_PATH": str(policy_path),
        "CASCADE_FIRESTORE_COLLECTION": collection,
    }
    daemons = []
    for index in range(instances):
        instance_id = f"chaos-{index}"
        own = {
            **env,
            "CASCADE_INSTANCE_ID": instance_id,
            "CASCADE_AUDIT_SPOOL_PATH": str(workdir / f"{instance_id}.spool.jsonl"),
        }
        daemons.append(Daemon(instance_id, own, workdir))
    return TrialStack(project, collection, workdir, policy, daemons, endpoints)


def trigger_topics(policy: Policy) -> list[str]:
    return [spec.publishes_to for spec in policy.transitions.values()]


def watch_subscription(topic: str) -> str:
    return f"chaos-watch-{topic}"
