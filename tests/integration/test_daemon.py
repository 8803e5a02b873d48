"""`cascade run` as a subprocess against the three emulators: a recorded day in, exactly the expected triggers
out; SIGHUP with a valid and an invalid policy; SIGTERM; /metrics and /status; the dashboard pages in a
browser."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import anyio
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from adapters.pubsub import PubSubPublisher, PubSubSource
from adapters.pubsub_admin import PubSubAdmin
from adapters.source import Received
from ops.policy_file import default_policy_text, load_policy
from ops.provision import Endpoints, provision_all
from ops.replay import read_recording
from tests.support.browser import assert_board_shows_critical_wait, save_screenshots
from tests.support.emulators import Emulator, free_port, wait_until

pytestmark = [pytest.mark.emulator, pytest.mark.timeout(180)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRIGGER_TOPICS = [
    "nba-phase3-trigger",
    "nba-phase4-trigger",
    "nba-predictions-trigger",
    "nba-phase6-export-trigger",
]
EXPECTED = {
    "nba-phase3-trigger": 1,
    "nba-phase4-trigger": 5,
    "nba-predictions-trigger": 1,
    "nba-phase6-export-trigger": 1,
}


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    port: int
    policy_path: Path
    pubsub_root: str

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            return 0, ""


@pytest.fixture
def stack(
    pubsub_server: Emulator, firestore_server: Emulator, bigquery_server: Emulator, tmp_path: Path
) -> Stack:
    return make_stack(pubsub_server, firestore_server, bigquery_server, tmp_path)


def make_stack(
    pubsub_server: Emulator,
    firestore_server: Emulator,
    bigquery_server: Emulator,
    tmp_path: Path,
    policy_changes: dict[str, str] | None = None,
) -> Stack:
    """A fresh project and Firestore collection on these emulators, provisioned; `policy_changes`: text
    replacements in the policy file the daemon reads."""
    project = f"run-{uuid.uuid4().hex[:8]}"
    policy_path = tmp_path / "policy.yaml"
    # Deadlines far enough ahead that none fires during the test (the router runs on the wall clock here).
    text = default_policy_text()[0]
    text = text.replace('fallback: {day_offset: 1, at: "06:00"}', 'fallback: {day_offset: 3, at: "06:00"}')
    text = text.replace('self_heal: {day_offset: 1, at: "08:00"}', 'self_heal: {day_offset: 3, at: "08:00"}')
    for old, new in (policy_changes or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    policy_path.write_text(text)
    port = free_port()
    env = {
        **os.environ,
        "CASCADE_PROJECT": project,
        "PUBSUB_EMULATOR_HOST": pubsub_server.host_port,
        "FIRESTORE_EMULATOR_HOST": firestore_server.host_port,
        "BIGQUERY_EMULATOR_HOST": bigquery_server.host_port,
        "PORT": str(port),
        "CASCADE_POLICY_PATH": str(policy_path),
        "CASCADE_AUDIT_SPOOL_PATH": str(tmp_path / "spool.jsonl"),
        "CASCADE_FIRESTORE_COLLECTION": f"dates_{uuid.uuid4().hex[:8]}",
        "CASCADE_INSTANCE_ID": "it-1",
    }
    endpoints = Endpoints.from_environment(env)
    anyio.run(provision_all, project, load_policy(None), endpoints)
    anyio.run(_trigger_subscriptions, project, endpoints.pubsub)
    return Stack(project, env, port, policy_path, str(endpoints.pubsub))


async def _trigger_subscriptions(project: str, api_root: str | None) -> None:
    async with aiohttp.ClientSession() as session:
        admin = PubSubAdmin(project, session, api_root)
        for topic in TRIGGER_TOPICS:
            await admin.ensure_subscription(f"watch-{topic}", topic, 10)


@pytest.fixture
def daemon(stack: Stack) -> Iterator[subprocess.Popen[str]]:
    process = start(stack)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def spawn(stack: Stack) -> subprocess.Popen[str]:
    """`cascade run` as a subprocess, its output (both streams) on a text pipe; not waited for."""
    return subprocess.Popen(
        [sys.executable, "-m", "ops.cli", "run"],
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start(stack: Stack) -> subprocess.Popen[str]:
    process = spawn(stack)
    ready = wait_until(lambda: stack.get("/readyz")[0] == 200 or process.poll() is not None, 60)
    if not ready or process.poll() is not None:
        process.kill()
        output = process.communicate(timeout=10)[0]
        raise AssertionError(f"cascade run did not become ready:\n{output[-4000:]}")
    return process


def overnight_messages() -> list[tuple[str, bytes]]:
    """The recorded overnight day, moved to last night: game date yesterday (ET), reported just now."""
    with (EXAMPLES / "overnight_full_cascade.jsonl").open() as lines:
        deliveries = read_recording(lines)
    now = datetime.now(UTC)
    yesterday = (now.astimezone(ZoneInfo("America/New_York")) - timedelta(days=1)).date().isoformat()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = []
    for delivery in deliveries:
        assert isinstance(delivery.data, dict)
        body = {**delivery.data, "game_date": yesterday, "timestamp": stamp}
        out.append((delivery.topic, json.dumps(body).encode()))
    return out


async def publish(stack: Stack, messages: list[tuple[str, bytes]]) -> None:
    async with aiohttp.ClientSession() as session:
        publisher = PubSubPublisher(stack.project, session=session, api_root=stack.pubsub_root)
        for topic, data in messages:
            await publisher.publish(topic, data, {})


async def collect_triggers(
    stack: Stack, expected: dict[str, int], timeout_s: float = 60
) -> dict[str, list[Received]]:
    """Pull the trigger topics until `expected` counts arrived, then a little longer to catch extras."""
    got: dict[str, list[Received]] = {topic: [] for topic in TRIGGER_TOPICS}
    complete = anyio.Event()

    async def record(received: Received) -> None:
        got[received.topic].append(received)
        if all(len(got[t]) >= n for t, n in expected.items()):
            complete.set()

    async with aiohttp.ClientSession() as session:
        source = PubSubSource(
            stack.project,
            {f"watch-{t}": t for t in TRIGGER_TOPICS},
            session=session,
            api_root=stack.pubsub_root,
        )
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(source.run, record)
            if any(n > 0 for n in expected.values()):
                with anyio.fail_after(timeout_s):
                    await complete.wait()
            # A watch window, not a wait for something: a duplicate trigger would arrive right behind.
            await anyio.sleep(2)
            tasks.cancel_scope.cancel()
    return got


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    output = process.communicate(timeout=15)[0]
    assert time.monotonic() - began < 10, "SIGTERM must end the process within Cloud Run's 10 s"
    return process.returncode, output


def test_a_recorded_day_produces_exactly_the_expected_triggers(
    stack: Stack, daemon: subprocess.Popen[str]
) -> None:
    anyio.run(publish, stack, overnight_messages())
    got = anyio.run(collect_triggers, stack, EXPECTED)
    assert {topic: len(messages) for topic, messages in got.items()} == EXPECTED
    for messages in got.values():
        assert len({m.attributes["trigger_id"] for m in messages}) == 1
        labels = [(m.attributes["source"], m.attributes["mode"]) for m in messages]
        assert labels == [("cascade", "overnight")] * len(messages)
    code, body = stack.get("/metrics")
    assert code == 200
    assert metric(body, "cascade_triggers_total", transition="phase4_to_phase5", source="cascade") == 1
    assert metric(body, "cascade_trigger_latency_seconds_count", transition="phase5_to_phase6") == 1
    assert (
        metric(body, "cascade_events_received_total", topic="nba-phase3-analytics-complete", status="routed")
        == 5
    )
    code, body = stack.get("/status")
    assert code == 200 and "phase5_to_phase6" in body
    assert stack.get("/healthz")[0] == 200
    returncode, output = stop(daemon)
    assert returncode == 0, output[-3000:]


def test_sighup_applies_a_valid_policy_and_keeps_the_old_one_on_an_invalid_file(
    stack: Stack, daemon: subprocess.Popen[str]
) -> None:
    text = stack.policy_path.read_text()
    stack.policy_path.write_text(text.replace("max_per_window: 5", "max_per_window: 7"))
    daemon.send_signal(signal.SIGHUP)
    assert wait_until(
        lambda: metric(stack.get("/metrics")[1], "cascade_policy_reloads_total", result="applied") == 1, 20
    )
    stack.policy_path.write_text(text.replace("max_per_window: 5", "max_per_window: 0"))
    daemon.send_signal(signal.SIGHUP)
    assert wait_until(
        lambda: metric(stack.get("/metrics")[1], "cascade_policy_reloads_total", result="invalid") == 1, 20
    )
    assert stack.get("/healthz")[0] == 200  # still routing on the last valid policy
    returncode, output = stop(daemon)
    assert returncode == 0
    assert "alerts.max_per_window" in output and "policy.yaml" in output  # the rejection names file and field


def test_sigterm_mid_stream_loses_nothing_and_a_restart_triggers_once(stack: Stack) -> None:
    messages = overnight_messages()
    first = start(stack)
    anyio.run(publish, stack, messages[:7])  # phase 2 complete (5) + two of phase 3
    got = anyio.run(collect_triggers, stack, {"nba-phase3-trigger": 1})
    returncode, _ = stop(first)
    assert returncode == 0
    anyio.run(publish, stack, messages[7:])  # the rest arrives while no router runs
    second = start(stack)
    try:
        rest = dict(EXPECTED, **{"nba-phase3-trigger": 0})
        got_after = anyio.run(collect_triggers, stack, rest)
    finally:
        stop(second)
    counts = {t: len(got[t]) + len(got_after[t]) for t in TRIGGER_TOPICS}
    assert counts == EXPECTED


def critical_day_messages(game_date: str) -> list[tuple[str, bytes]]:
    """The recorded day whose critical nbac_gamebook never reports, moved to `game_date`, reported now."""
    with (EXAMPLES / "critical_never_reports.jsonl").open() as lines:
        deliveries = read_recording(lines)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        (d.topic, json.dumps({**d.data, "game_date": game_date, "timestamp": stamp}).encode())
        for d in deliveries
        if isinstance(d.data, dict)
    ]


def test_the_running_daemon_shows_a_date_waiting_on_its_critical_input_in_a_browser(
    stack: Stack, daemon: subprocess.Popen[str], driver: WebDriver
) -> None:
    """The operator's view of the real daemon (subprocess, emulators, wall clock): its JSON and its pages."""
    yesterday = (datetime.now(ZoneInfo("America/New_York")) - timedelta(days=1)).date().isoformat()
    anyio.run(publish, stack, critical_day_messages(yesterday))

    def phase2_waits() -> bool:
        code, body = stack.get(f"/board/{yesterday}")
        return code == 200 and json.loads(body)["dates"][0]["phases"][0]["critical_missing"] == [
            "nbac_gamebook"
        ]

    assert wait_until(phase2_waits, 30), stack.get(f"/board/{yesterday}")
    code, body = stack.get(f"/explain/{yesterday}?transition=phase2_to_phase3")
    assert code == 200
    [phase2] = json.loads(body)["transitions"]
    assert phase2["missing"] == [{"processor": "nbac_gamebook", "critical": True}]
    assert [d["kind"] for d in phase2["deadlines"]] == ["fallback", "self_heal"]

    base = f"http://127.0.0.1:{stack.port}"
    driver.get(f"{base}/")
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-date="{yesterday}"]')
    assert "nbac_gamebook" in row.text, row.text
    assert_board_shows_critical_wait(driver, f"{base}/dates/{yesterday}", yesterday)
    save_screenshots(driver, "dashboard-running-daemon")
    returncode, output = stop(daemon)
    assert returncode == 0, output[-3000:]
