"""`cascade publish` against the Pub/Sub emulator: every recorded message arrives with its data and attributes.

The handler runs in-process, as `cascade publish` would (it starts its own event loop, so these tests are
synchronous and drive the emulator-side setup and the pull with `anyio.run` too).
"""

from __future__ import annotations

import argparse
import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import anyio
import pytest

from adapters.pubsub import PubSubSource
from adapters.pubsub_admin import PubSubAdmin, provision_pubsub
from adapters.source import Received
from ops.publish_cmd import EXIT_UNAVAILABLE, add_publish_command
from ops.replay import RecordedDelivery, read_recording
from policies.model import Policy
from tests.support.emulators import Emulator, free_port

pytestmark = pytest.mark.emulator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "overnight_full_cascade.jsonl"
TOPIC = "nba-phase4-precompute-complete"  # five per-table messages in the example


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_publish(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="cascade")
    add_publish_command(parser.add_subparsers(required=True))
    args = parser.parse_args(["publish", *argv])
    return int(args.handler(args))


async def provision_with_test_subscription(project: str, policy: Policy, api_root: str) -> str:
    await provision_pubsub(project, policy, api_root=api_root)
    subscription = unique("publish-test")
    async with aiohttp.ClientSession() as session:
        await PubSubAdmin(project, session, api_root).ensure_subscription(subscription, TOPIC)
    return subscription


async def receive(project: str, api_root: str, subscription: str, count: int) -> list[Received]:
    """Pull (and ack) until `count` messages arrived; fail after a deadline."""
    seen: list[Received] = []
    all_arrived = anyio.Event()

    async def handle(received: Received) -> None:
        seen.append(received)
        if len(seen) >= count:
            all_arrived.set()

    source = PubSubSource(project, {subscription: TOPIC}, api_root=api_root)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(source.run, handle)
            await all_arrived.wait()
            tasks.cancel_scope.cancel()
    return seen


def as_sent(deliveries: Sequence[RecordedDelivery]) -> list[tuple[bytes, dict[str, str]]]:
    return sorted((d.body, dict(d.attributes)) for d in deliveries)


def as_received(messages: Sequence[Received]) -> list[tuple[bytes, dict[str, str]]]:
    return sorted((m.data, dict(m.attributes)) for m in messages)


def test_every_recorded_message_of_a_topic_arrives_with_its_data_and_attributes(
    pubsub_server: Emulator,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, api_root = unique("publish"), f"http://{pubsub_server.host_port}/v1"
    subscription = anyio.run(provision_with_test_subscription, project, policy, api_root)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.host_port)
    with EXAMPLE.open(encoding="utf-8") as lines:
        recorded = read_recording(lines, str(EXAMPLE))
    expected = [d for d in recorded if d.topic == TOPIC]
    assert len(expected) == 5

    assert run_publish(str(EXAMPLE), "--project", project, "--no-wait") == 0

    received = anyio.run(receive, project, api_root, subscription, len(expected))
    assert as_received(received) == as_sent(expected)
    # Pub/Sub assigned its own ids; the recorded ones are only printed next to them.
    assert not {m.message_id for m in received} & {d.message_id for d in expected}
    out = capsys.readouterr().out.splitlines()
    assert len([line for line in out if " -> " in line]) == len(recorded)
    assert out[-1].startswith(f"published {len(recorded)} messages to 4 topics")


def test_the_recorded_gaps_are_kept_divided_by_speed(
    pubsub_server: Emulator,
    policy: Policy,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    project, api_root = unique("publish"), f"http://{pubsub_server.host_port}/v1"
    subscription = anyio.run(provision_with_test_subscription, project, policy, api_root)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.host_port)
    events = tmp_path / "three.jsonl"
    at = ["2025-12-31T07:30:00Z", "2025-12-31T07:30:30Z", "2025-12-31T07:31:00Z"]  # 60 s in all
    events.write_text(
        "".join(
            json.dumps({"at": t, "topic": TOPIC, "message_id": f"m-{i}", "data": {"i": i}}) + "\n"
            for i, t in enumerate(at)
        )
    )

    assert run_publish(str(events), "--project", project, "--speed", "100") == 0  # 60 s → 0.6 s

    out = capsys.readouterr().out.splitlines()
    elapsed_s = float(re.search(r" in ([0-9.]+) s ", out[-1]).group(1))  # type: ignore[union-attr]
    assert 0.55 <= elapsed_s < 5
    assert [line.split()[0] for line in out[:3]] == ["+0.00s", "+0.30s", "+0.60s"]
    received = anyio.run(receive, project, api_root, subscription, 3)
    assert sorted(m.data for m in received) == [b'{"i": 0}', b'{"i": 1}', b'{"i": 2}']


def test_a_topic_that_was_not_provisioned_exits_3_and_says_to_provision(
    pubsub_server: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_server.host_port)
    project = unique("unprovisioned")
    assert run_publish(str(EXAMPLE), "--project", project, "--no-wait") == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "404" in err and f"cascade provision --project {project}" in err
    assert "stopped after 0 of 16 messages" in err and "Traceback" not in err


def test_an_unreachable_pubsub_exits_3_with_one_sentence_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", closed)
    assert run_publish(str(EXAMPLE), "--project", "p-closed", "--no-wait") == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    [message] = [line for line in err.splitlines() if line.startswith("cascade publish:")]
    assert message == f"cascade publish: Pub/Sub at {closed} did not answer (connection refused)"
    assert "Traceback" not in err and "ConnectionKey" not in err
