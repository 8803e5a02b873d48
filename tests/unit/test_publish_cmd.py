"""`cascade publish`: the timing plan (pure) and the input errors that stop it before any network."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ops.publish_cmd import EXIT_USAGE, add_publish_command, schedule
from ops.replay import RecordedDelivery, read_recording

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

T0 = datetime(2025, 12, 31, 6, 5, 13, tzinfo=UTC)


def delivery(after_s: float, message_id: str, topic: str = "nba-phase2-raw-complete") -> RecordedDelivery:
    return RecordedDelivery(
        at=T0 + timedelta(seconds=after_s), topic=topic, message_id=message_id, data={"n": message_id}
    )


def plan_of(deliveries: list[RecordedDelivery], speed: float) -> list[tuple[float, str]]:
    return [(offset_s, d.message_id) for offset_s, d in schedule(deliveries, speed)]


RECORDED = [delivery(0, "a"), delivery(60, "b"), delivery(3600, "c")]


@pytest.mark.parametrize(
    ("speed", "expected"),
    [
        (1, [(0.0, "a"), (60.0, "b"), (3600.0, "c")]),
        (60, [(0.0, "a"), (1.0, "b"), (60.0, "c")]),
        (600, [(0.0, "a"), (0.1, "b"), (6.0, "c")]),
        (0.5, [(0.0, "a"), (120.0, "b"), (7200.0, "c")]),
        (0, [(0.0, "a"), (0.0, "b"), (0.0, "c")]),
    ],
)
def test_offsets_are_the_recorded_gaps_from_the_first_delivery_divided_by_speed(
    speed: float, expected: list[tuple[float, str]]
) -> None:
    plan = plan_of(RECORDED, speed)
    assert [message_id for _, message_id in plan] == [message_id for _, message_id in expected]
    assert [offset_s for offset_s, _ in plan] == pytest.approx([offset_s for offset_s, _ in expected])


def test_the_plan_starts_at_the_first_delivery_not_at_midnight_or_the_unix_epoch() -> None:
    later = [delivery(7200, "x"), delivery(7260, "y")]
    assert plan_of(later, 60) == [(0.0, "x"), (1.0, "y")]


def test_deliveries_out_of_order_are_planned_in_recorded_time_and_ties_keep_file_order() -> None:
    mixed = [delivery(60, "late"), delivery(0, "tie-1"), delivery(0, "tie-2"), delivery(30, "middle")]
    assert plan_of(mixed, 30) == [(0.0, "tie-1"), (0.0, "tie-2"), (1.0, "middle"), (2.0, "late")]


def test_recorded_instants_in_other_offsets_are_compared_as_instants() -> None:
    new_york = timezone(timedelta(hours=-5))
    a_minute_later_in_new_york = RecordedDelivery(
        at=(T0 + timedelta(seconds=60)).astimezone(new_york), topic="t-1", message_id="ny", data="raw"
    )
    assert plan_of([delivery(0, "utc"), a_minute_later_in_new_york], 60) == [(0.0, "utc"), (1.0, "ny")]


def test_an_empty_recording_plans_nothing() -> None:
    assert schedule([], 60) == []


def test_a_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        schedule(RECORDED, -1)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cascade")
    add_publish_command(parser.add_subparsers(required=True))
    return parser.parse_args(list(argv))


def test_speed_defaults_to_a_recorded_minute_per_second_and_no_wait_is_off() -> None:
    args = parse("publish", "day.jsonl", "--project", "p")
    assert (args.speed, args.no_wait, args.project) == (60.0, False, "p")


@pytest.mark.parametrize("bad", ["-1", "fast", "nan", "inf"])
def test_a_speed_that_is_not_zero_or_positive_is_a_usage_error(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("publish", "day.jsonl", "--project", "p", f"--speed={bad}")
    assert exited.value.code == 2
    assert "--speed" in capsys.readouterr().err


def test_an_invalid_line_exits_2_naming_file_and_line_before_touching_pubsub(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A closed port: reaching Pub/Sub would fail with exit 3, so exit 2 proves the file was checked first.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    events = tmp_path / "day.jsonl"
    good = delivery(0, "a").model_dump_json()
    events.write_text(f'{good}\n\n{{"at": "2025-12-31T06:00:00Z", "topic": "t-1"}}\n')
    args = parse("publish", str(events), "--project", "p", "--no-wait")
    assert args.handler(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{events}:3:" in err and "message_id" in err


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("publish", str(tmp_path / "absent.jsonl"), "--project", "p")
    assert args.handler(args) == EXIT_USAGE
    assert "absent.jsonl" in capsys.readouterr().err


def test_an_empty_file_publishes_nothing_and_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_text("\n")
    args = parse("publish", str(events), "--project", "p")
    assert args.handler(args) == 0
    assert "nothing to publish" in capsys.readouterr().out


def test_relive_moves_the_recorded_day_to_now_keeping_the_day_relation_and_the_spacing() -> None:
    from datetime import UTC, datetime

    from ops.publish_cmd import relive

    with (EXAMPLES_DIR / "overnight_full_cascade.jsonl").open() as lines:
        recorded = read_recording(lines)
    now = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)  # 02:00 ET on the 26th
    moved = relive(recorded, now, speed=60)
    assert {d.data["game_date"] for d in moved if isinstance(d.data, dict)} == {"2026-11-25"}
    assert moved[0].data["timestamp"] == "2026-11-26T07:00:00Z"  # type: ignore[index]
    last_offset_s = (recorded[-1].at - recorded[0].at).total_seconds() / 60
    last = datetime.fromisoformat(moved[-1].data["timestamp"].replace("Z", "+00:00"))  # type: ignore[index]
    assert (last - now).total_seconds() == pytest.approx(last_offset_s, abs=1)
    assert [d.at for d in moved] == [d.at for d in recorded]  # the publish plan itself is unchanged
