"""One system under test on its own fresh stack, as processes: emulators, provision, the probed processes.

`open_stack(system, ...)` starts the emulators (Pub/Sub for the relay; Pub/Sub, Firestore and BigQuery for
cascade) on free ports, runs `cascade provision`, and starts `instances` processes under `bench.cost_probe`
(`cascade run`, or the relay). Everything is stopped on the way out, in reverse order, also after a
failure: the processes with SIGTERM (the daemon drains), then SIGKILL after `STOP_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import aiohttp
import anyio

from adapters.pubsub_admin import PubSubAdmin, completion_subscriptions
from bench.cost_probe import SNAPSHOT_FD_ENV, TRIGGER_TOPICS_ENV
from policies.model import Policy
from tests.support.bigquery_emulator import bigquery_emulator
from tests.support.emulators import Emulator, firestore_emulator, free_port, pubsub_emulator

System = Literal["relay", "cascade"]
SYSTEMS: tuple[System, ...] = ("relay", "cascade")
ROOT = Path(__file__).resolve().parents[1]
PROJECT = "cascade-bench"
RELAY_TOPIC = "bench-relay-out"
STOP_TIMEOUT_S = 15.0  # the daemon drains within CASCADE_SHUTDOWN_GRACE_S (8 s by default)


@dataclass
class Probed:
    """One process under `bench.cost_probe`, and the read end of its snapshot channel."""

    popen: subprocess.Popen[str]
    answers: TextIO
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Stack:
    system: System
    emulators: list[Emulator]
    processes: list[Probed]
    consumed: dict[str, str]  # subscription -> topic: what the processes pull from
    outputs: list[str]  # the topics where triggers (relay: copies) come out

    @property
    def pubsub_root(self) -> str:
        return f"http://{self.emulators[0].host_port}/v1"

    def logs(self) -> str:
        return "".join(_tail(p.log_path) for p in self.processes)


@contextlib.contextmanager
def open_stack(system: System, policy: Policy, instances: int, workdir: Path) -> Iterator[Stack]:
    emulators = [pubsub_emulator()]
    if system == "cascade":
        emulators += [firestore_emulator(), bigquery_emulator()]
    with contextlib.ExitStack() as cleanup:
        for emulator in emulators:
            cleanup.callback(emulator.stop)  # registered first: stopped even if a start fails
        with ThreadPoolExecutor(len(emulators)) as pool:
            list(pool.map(Emulator.start, emulators))
        env = _environment(system, emulators, policy)
        _provision(system, env)
        if system == "relay":
            anyio.run(_create_topic, emulators[0], RELAY_TOPIC)
        processes = []
        for index in range(instances):
            process = _start(system, env, index, workdir)
            cleanup.callback(_stop, process)
            processes.append(process)
        outputs = [RELAY_TOPIC] if system == "relay" else _trigger_topics(policy)
        yield Stack(system, emulators, processes, completion_subscriptions(policy), outputs)


def _trigger_topics(policy: Policy) -> list[str]:
    return [spec.publishes_to for spec in policy.transitions.values()]


def _environment(system: System, emulators: list[Emulator], policy: Policy) -> dict[str, str]:
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": emulators[0].host_port, "PYTHONUNBUFFERED": "1"}
    if system == "relay":
        env.update(
            BENCH_PROJECT=PROJECT,
            BENCH_RELAY_SUBSCRIPTIONS=",".join(completion_subscriptions(policy)),  # the ones cascade consumes
            BENCH_RELAY_TOPIC=RELAY_TOPIC,
        )
        env[TRIGGER_TOPICS_ENV] = RELAY_TOPIC
        return env
    env.update(
        CASCADE_PROJECT=PROJECT,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        FIRESTORE_EMULATOR_HOST=emulators[1].host_port,
        BIGQUERY_EMULATOR_HOST=emulators[2].host_port,
    )
    env[TRIGGER_TOPICS_ENV] = ",".join(_trigger_topics(policy))
    return env


def _provision(system: System, env: dict[str, str]) -> None:
    """`cascade provision`: the same topics and subscriptions (names, ack deadlines) for both systems."""
    argv = ["provision", "--project", PROJECT] + (["--skip-bigquery"] if system == "relay" else [])
    result = subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cascade provision exited with {result.returncode}:\n{result.stderr[-3000:]}")


async def _create_topic(pubsub: Emulator, topic: str) -> None:
    async with aiohttp.ClientSession() as session:
        await PubSubAdmin(PROJECT, session, f"http://{pubsub.host_port}/v1").ensure_topic(topic)


def _start(system: System, env: dict[str, str], index: int, workdir: Path) -> Probed:
    env = dict(env)
    if system == "cascade":
        env.update(PORT=str(free_port()), CASCADE_AUDIT_SPOOL_PATH=str(workdir / f"audit-{index}.jsonl"))
    log_path = workdir / f"{system}-{index}.log"
    answers, child_end = os.pipe()
    env[SNAPSHOT_FD_ENV] = str(child_end)
    try:
        with log_path.open("w") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "bench.cost_probe", system],
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
                pass_fds=(child_end,),
            )
    finally:
        os.close(child_end)
    return Probed(popen, os.fdopen(answers, "r"), log_path)


def _stop(process: Probed) -> None:
    popen = process.popen
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait()
    for stream in (popen.stdin, process.answers):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _tail(path: Path) -> str:
    text = path.read_text(errors="replace")[-3000:] if path.exists() else ""
    return f"\n--- {path} ---\n{text}\n" if text else ""
