"""The progress line: drawn on a terminal for large work, throttled, erased at the end; nothing elsewhere."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from ops import progress as progress_module
from ops.cli import main
from ops.progress import Progress

RECORDING = Path(__file__).parents[2] / "examples" / "overnight_full_cascade.jsonl"
CLEAR = "\x1b[K"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_terminal_sees_the_count_at_most_every_fifth_of_a_second_then_a_clean_line() -> None:
    terminal, clock = FakeTerminal(), Clock()
    bar = Progress("replaying", total=4_000, stream=terminal, clock=clock)

    for done, at_s in [(1_000, 100.0), (2_000, 100.1), (3_000, 100.25), (4_000, 100.3)]:
        clock.now_s = at_s
        bar.update(done)
    bar.close()

    assert terminal.getvalue() == (
        f"{CLEAR}replaying 1,000/4,000 (25%)\r{CLEAR}replaying 3,000/4,000 (75%)\r{CLEAR}"
    )


def test_a_pipe_sees_nothing() -> None:
    pipe = io.StringIO()  # isatty() is False
    bar = Progress("replaying", total=1_000_000, stream=pipe, clock=Clock())

    bar.update(500_000)
    bar.close()

    assert pipe.getvalue() == ""


def test_small_work_draws_nothing_even_on_a_terminal() -> None:
    terminal = FakeTerminal()
    bar = Progress("replaying", total=1_999, stream=terminal, clock=Clock())

    bar.update(1_999)
    bar.close()

    assert terminal.getvalue() == ""


def test_counting_without_a_total_starts_once_the_count_is_large() -> None:
    terminal, clock = FakeTerminal(), Clock()
    bar = Progress("reading day.jsonl", stream=terminal, clock=clock, min_items=3)

    items = list(bar.counted(["a", "b", "c", "d"]))

    assert items == ["a", "b", "c", "d"]
    assert terminal.getvalue() == f"{CLEAR}reading day.jsonl 3\r"


def test_replay_draws_reading_and_replaying_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(progress_module, "MIN_ITEMS", 1)
    monkeypatch.setattr("ops.replay.PROGRESS_EVERY", 1)
    monkeypatch.setattr("sys.stderr", terminal)

    assert main(["replay", str(RECORDING), "--quiet"]) == 0

    drawn = terminal.getvalue()
    assert drawn.startswith(f"{CLEAR}reading {RECORDING} 1\r")
    assert f"{CLEAR}replaying 1/16 (6%)\r" in drawn
    assert drawn.endswith(CLEAR)
    assert capsys.readouterr().out.startswith("replayed 16 deliveries")


def test_replay_draws_nothing_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "MIN_ITEMS", 1)
    monkeypatch.setattr("ops.replay.PROGRESS_EVERY", 1)

    assert main(["replay", str(RECORDING), "--quiet"]) == 0

    assert capsys.readouterr().err == ""


class FakePublisher:
    def __init__(self, project: str, api_root: str | None = None) -> None:
        self.count = 0

    async def __aenter__(self) -> FakePublisher:
        return self

    async def __aexit__(self, *_: Any) -> None:
        return None

    async def publish(self, topic: str, data: bytes, attributes: Any) -> str:
        self.count += 1
        return f"id-{self.count}"


def test_publish_counts_the_messages_published_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr("adapters.pubsub.PubSubPublisher", FakePublisher)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "localhost:8085")  # no credentials needed; nothing is sent
    monkeypatch.setattr("sys.stderr", terminal)

    assert main(["publish", str(RECORDING), "--project", "p", "--no-wait"]) == 0

    assert terminal.getvalue().startswith(f"{CLEAR}published 1/16 (6%)\r")
    assert terminal.getvalue().endswith(CLEAR)
    assert capsys.readouterr().out.splitlines()[-1].startswith("published 16 messages to ")
