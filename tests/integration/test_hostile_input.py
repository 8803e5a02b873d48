"""The daemon under hostile input: malformed messages between the messages of a valid day all reach the
dead-letter topic with their category and reason, the day still triggers exactly once, /healthz stays 200."""

from __future__ import annotations

import json
import subprocess

import aiohttp
import anyio
import pytest

from adapters.pubsub import PubSubSource
from adapters.pubsub_admin import PubSubAdmin
from adapters.resource_names import DEFAULT_NAMES
from adapters.source import Received
from tests.integration.test_daemon import (  # noqa: F401  (fixtures)
    EXPECTED,
    Stack,
    collect_triggers,
    daemon,
    metric,
    overnight_messages,
    publish,
    stack,
    stop,
)

pytestmark = [
    pytest.mark.emulator,
    pytest.mark.timeout(180),
    # The test's own publisher sends the 3 MB body as bytes; aiohttp warns about the size, nothing is wrong.
    pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning"),
]

DEAD_LETTER_TOPIC = DEFAULT_NAMES.dead_letter_topic
PHASE2_TOPIC = "nba-phase2-raw-complete"
PHASE3_TOPIC = "nba-phase3-analytics-complete"


def hostile() -> list[tuple[str, bytes, str]]:
    """(topic, body, expected category): invalid UTF-8, a 3 MB body (Pub/Sub takes up to 10 MB), JSON nested
    100,000 deep, a JSON array, a completion whose timestamp is before year 1 in UTC."""
    valid = json.loads(overnight_messages()[0][1])
    before_year_1 = {**valid, "timestamp": "0001-01-01T00:00:00+05:00"}
    return [
        (PHASE2_TOPIC, b"\xff\xfe{not utf-8", "not_json"),
        (PHASE3_TOPIC, b'{"pad": "' + b"x" * 3_000_000 + b'"}', "too_large"),
        (PHASE2_TOPIC, b"[" * 100_000 + b"]" * 100_000, "not_json"),
        (PHASE3_TOPIC, b"[1, 2, 3]", "schema"),
        (PHASE2_TOPIC, json.dumps(before_year_1).encode(), "schema"),
    ]


async def _watch_dead_letters(target: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        admin = PubSubAdmin(target.project, session, target.pubsub_root)
        await admin.ensure_subscription("watch-dead-letter", DEAD_LETTER_TOPIC, 10)


async def _collect_dead_letters(target: Stack, count: int, timeout_s: float = 60) -> list[Received]:
    got: list[Received] = []
    enough = anyio.Event()

    async def record(received: Received) -> None:
        got.append(received)
        if len(got) >= count:
            enough.set()

    async with aiohttp.ClientSession() as session:
        source = PubSubSource(
            target.project,
            {"watch-dead-letter": DEAD_LETTER_TOPIC},
            session=session,
            api_root=target.pubsub_root,
        )
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(source.run, record)
            with anyio.fail_after(timeout_s):
                await enough.wait()
            await anyio.sleep(2)  # a watch window: an extra dead letter would arrive right behind
            tasks.cancel_scope.cancel()
    return got


def test_malformed_messages_between_a_valid_days_are_dead_lettered_and_the_day_still_triggers(
    stack: Stack,  # noqa: F811
    daemon: subprocess.Popen[str],  # noqa: F811
) -> None:
    anyio.run(_watch_dead_letters, stack)
    bad = hostile()
    day = overnight_messages()
    # One malformed message after every few valid ones, so the day's routing runs between them.
    mixed: list[tuple[str, bytes]] = []
    for n, message in enumerate(day):
        mixed.append(message)
        if n % 3 == 0 and n // 3 < len(bad):
            mixed.append(bad[n // 3][:2])
    mixed += [(topic, body) for topic, body, _ in bad[len(mixed) - len(day) :]]
    anyio.run(publish, stack, mixed)

    got = anyio.run(collect_triggers, stack, EXPECTED)
    assert {topic: len(messages) for topic, messages in got.items()} == EXPECTED
    letters = anyio.run(_collect_dead_letters, stack, len(bad))
    by_body = {letter.data: letter for letter in letters}
    assert len(letters) == len(by_body) == len(bad)  # each once
    for topic, body, category in bad:
        letter = by_body[body]  # the message as published, byte for byte
        assert letter.attributes["category"] == category
        assert letter.attributes["source_topic"] == topic and letter.attributes["reason"]

    assert stack.get("/healthz")[0] == 200
    code, text = stack.get("/metrics")
    assert code == 200
    assert metric(text, "cascade_dead_letters_total", reason="not_json") == 2
    assert metric(text, "cascade_dead_letters_total", reason="too_large") == 1
    assert metric(text, "cascade_dead_letters_total", reason="schema") == 2
    returncode, output = stop(daemon)
    assert returncode == 0, output[-3000:]
