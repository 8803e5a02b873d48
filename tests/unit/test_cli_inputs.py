"""What a newcomer's mistakes with input files look like: one line `cascade COMMAND: FILE[:LINE[:COL]]: problem`
and exit 2, never a traceback; and the inputs that should simply work (.gz under any name, `-`, a BOM)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from ops import publish_cmd
from ops.cli import main
from ops.exit_codes import EXIT_OK, EXIT_USAGE
from ops.policy_file import default_policy_text, load_policy
from ops.policy_holder import PolicyHolder
from ops.publish_cmd import PublishReport

EXAMPLES = Path(__file__).parents[2] / "examples"
RECORDING = EXAMPLES / "overnight_full_cascade.jsonl"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """argparse's own errors: exit code and the last stderr line (the first is the usage line)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return int(str(exited.value.code)), capsys.readouterr().err.splitlines()[-1]


def stdin_of(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data)), encoding="utf-8"))


# --- 1. an empty recording ----------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n  \n\n"], ids=["empty", "blank-lines"])
def test_an_empty_recording_is_one_sentence_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_text(content)

    code, out, err = run(capsys, "replay", str(events))

    assert code == EXIT_USAGE
    assert err == f"cascade replay: {events}: no deliveries in the recording\n"
    assert out == ""


# --- 2. output paths checked before the replay --------------------------------------------------------


@pytest.mark.parametrize("flag", ["--out", "--report"])
def test_an_output_in_a_missing_directory_is_refused_before_replaying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    def no_replay(*_: object) -> None:
        raise AssertionError("the replay ran although its output cannot be written")

    monkeypatch.setattr("ops.replay_cmd._run", no_replay)
    target = tmp_path / "missing-dir" / "out.file"

    code, out, err = run(capsys, "replay", str(RECORDING), flag, str(target))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {target}: directory {target.parent} does not exist"
    assert out == ""


def test_an_output_that_is_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "replay", str(RECORDING), "--out", str(tmp_path))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {tmp_path}: is a directory"


def test_an_output_in_a_read_only_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.output_paths.os.access", lambda *_: False)  # root ignores the mode bits
    target = tmp_path / "tl.jsonl"

    code, _, err = run(capsys, "replay", str(RECORDING), "--out", str(target))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {target}: directory {tmp_path} is not writable"


def test_a_write_that_fails_after_the_check_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ops.replay.write_timeline", disk_full)
    target = tmp_path / "tl.jsonl"

    code, _, err = run(capsys, "replay", str(RECORDING), "--out", str(target), "--quiet")

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {target}: cannot write (No space left on device)"


# --- 3. encodings, gzip, stdin, BOM -------------------------------------------------------------------


def test_a_gzipped_recording_is_read_whatever_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "day.jsonl"  # gzip, but not named .gz
    events.write_bytes(gzip.compress(RECORDING.read_bytes()))

    code, out, _ = run(capsys, "replay", str(events), "--quiet")

    assert code == EXIT_OK
    assert first_line(out).startswith("replayed 16 deliveries up to ")


def test_a_gzipped_recording_is_read_from_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin_of(monkeypatch, gzip.compress(RECORDING.read_bytes()))

    code, out, _ = run(capsys, "replay", "-", "--quiet")

    assert code == EXIT_OK
    assert first_line(out).startswith("replayed 16 deliveries up to ")


def test_a_recording_with_a_byte_order_mark_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "bom.jsonl"
    events.write_bytes(b"\xef\xbb\xbf" + RECORDING.read_bytes())

    code, out, _ = run(capsys, "replay", str(events), "--quiet")

    assert code == EXIT_OK
    assert first_line(out).startswith("replayed 16 deliveries up to ")


def test_a_recording_that_is_not_utf8_names_the_byte_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "latin1.jsonl"
    events.write_bytes(RECORDING.read_bytes().splitlines(keepends=True)[0] + b'{"topic": "caf\xe9"}\n')

    code, _, err = run(capsys, "replay", str(events))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {events}: not UTF-8 text (byte 0xe9 at line 2, column 15)"


def test_a_corrupt_gzip_recording_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "cut.jsonl.gz"
    events.write_bytes(gzip.compress(RECORDING.read_bytes())[:60])

    code, _, err = run(capsys, "replay", str(events))

    assert code == EXIT_USAGE
    assert first_line(err).startswith(f"cascade replay: {events}: not a readable gzip file")


def test_publish_reads_a_gzipped_recording_and_refuses_one_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    planned: list[int] = []

    async def fake_publish(plan: publish_cmd.Plan, project: str) -> PublishReport:
        planned.append(len(plan))
        return PublishReport(len(plan), 1, 0.0, 0.0)

    monkeypatch.setattr(publish_cmd, "publish_plan", fake_publish)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "localhost:8085")  # no credentials needed; nothing is sent
    packed = tmp_path / "day.data"
    packed.write_bytes(gzip.compress(RECORDING.read_bytes()))
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_bytes(b"\x80\n")

    assert run(capsys, "publish", str(packed), "--project", "p", "--no-wait")[0] == EXIT_OK
    code, _, err = run(capsys, "publish", str(garbled), "--project", "p")

    assert planned == [16]
    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade publish: {garbled}: not UTF-8 text (byte 0x80 at line 1, column 1)"


def test_a_policy_with_a_byte_order_mark_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = default_policy_text()
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())

    code, out, _ = run(capsys, "check-policy", str(path))

    assert code == EXIT_OK
    assert first_line(out).startswith(f"{path}: ok (")


def test_a_policy_that_is_not_utf8_names_the_byte_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"version: 1\ntimezone: Am\xe9rica/New_York\n")

    code, _, err = run(capsys, "check-policy", str(path))

    assert code == EXIT_USAGE
    assert first_line(err) == f"{path}: not UTF-8 text (byte 0xe9 at line 2, column 13)"


def test_a_gzipped_policy_is_reported_as_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = default_policy_text()
    path = tmp_path / "policy.yaml"
    path.write_bytes(gzip.compress(text.encode()))

    code, _, err = run(capsys, "check-policy", str(path))

    assert code == EXIT_USAGE
    assert first_line(err) == f"{path}: not UTF-8 text (byte 0x8b at line 1, column 2)"


def test_a_recording_is_read_from_a_text_only_standard_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(RECORDING.read_text()))

    code, out, _ = run(capsys, "replay", "-", "--quiet")

    assert code == EXIT_OK
    assert first_line(out).startswith("replayed 16 deliveries up to ")


def test_a_timeline_is_read_gzipped_under_any_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "tl.jsonl"
    assert run(capsys, "replay", str(RECORDING), "--out", str(plain), "--quiet")[0] == EXIT_OK
    packed = tmp_path / "tl.data"
    packed.write_bytes(gzip.compress(plain.read_bytes()))

    code, out, _ = run(capsys, "status", "2025-12-30", "--timeline", str(packed))

    assert code == EXIT_OK
    assert "2025-12-30" in first_line(out)


# --- 4. one format, no internal names -----------------------------------------------------------------


def test_an_unreadable_policy_is_file_colon_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nowhere.yaml"

    code, _, err = run(capsys, "check-policy", str(path))

    assert code == EXIT_USAGE
    assert first_line(err) == f"{path}: cannot read (No such file or directory)"


def test_a_yaml_syntax_error_is_one_line_with_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\ntimezone: America: New_York\n")

    code, _, err = run(capsys, "check-policy", str(path))

    assert code == EXIT_USAGE
    assert err == f"{path}:2:18: not valid YAML: mapping values are not allowed here\n"


def test_an_unsupported_policy_version_names_the_supported_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, _ = default_policy_text()
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("version: 1", "version: 2"))
    line = text.splitlines().index("version: 1") + 1

    code, _, err = run(capsys, "check-policy", str(path))

    assert code == EXIT_USAGE
    assert first_line(err) == (
        f"{path}:{line}: version: Value error, version 2 is not supported (this cascade reads version 1)"
    )


def test_a_reload_renders_problems_like_check_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    text, _ = default_policy_text()
    path.write_text(text)
    holder = PolicyHolder(load_policy(path), path)
    path.write_text("version: 1\ntimezone: America: New_York\n")

    result = holder.reload()

    assert not result.ok
    assert result.problems == (f"{path}:2:18: not valid YAML: mapping values are not allowed here",)
    assert result.error is not None and str(result.error) == result.problems[0]


def test_invalid_json_in_a_recording_is_file_line_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    good = RECORDING.read_text().splitlines()[0]
    events.write_text(f"{good}\n{{not json\n")

    code, _, err = run(capsys, "replay", str(events))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {events}:2:2: invalid JSON: key must be a string"


def test_a_json_line_cut_short_points_at_its_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"at": 1\n')

    code, _, err = run(capsys, "replay", str(events))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {events}:1:9: invalid JSON: EOF while parsing an object"


def test_a_recording_line_that_is_not_an_object_names_no_internal_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('["a list"]\n')

    code, _, err = run(capsys, "replay", str(events))

    assert code == EXIT_USAGE
    assert first_line(err) == f"cascade replay: {events}:1: expected a JSON object (a recorded delivery)"


def test_invalid_json_in_a_timeline_is_file_line_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    timeline = tmp_path / "tl.jsonl"
    timeline.write_text('{"kind": "alert", "at": x}\n')

    code, _, err = run(capsys, "status", "--timeline", str(timeline))

    assert code == EXIT_USAGE
    assert first_line(err).startswith(f"cascade status: {timeline}:1:25: invalid JSON: Expecting value")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "x.jsonl", "--until", "tomorrow"], "argument --until: not an ISO time: 'tomorrow'"),
        (
            ["replay", "x.jsonl", "--until", "2025-12-31T09:00"],
            "argument --until: '2025-12-31T09:00' needs a timezone",
        ),
        (["status", "31/12/2025"], "argument DATE: '31/12/2025' is not a YYYY-MM-DD date"),
        (
            ["publish", "x.jsonl", "--project", "p", "--speed", "fast"],
            "argument --speed: 'fast' is not a number",
        ),
        (["slo", "--days", "week"], "argument --days: not a whole number: 'week'"),
    ],
    ids=["until-not-iso", "until-naive", "status-date", "publish-speed", "slo-days"],
)
def test_a_bad_argument_value_is_named_without_internal_names(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, last = usage_error(capsys, *argv)

    assert code == EXIT_USAGE
    assert last.startswith(f"cascade {argv[0]}: error: {message}")
    assert "invalid" not in last  # argparse's "invalid _instant value" named our function


def test_check_policy_json_lists_the_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\ntimezone: America: New_York\n")

    code, out, err = run(capsys, "check-policy", str(path), "--json")

    assert code == EXIT_USAGE and err == ""
    assert json.loads(out) == {
        "file": str(path),
        "ok": False,
        "problems": [
            {
                "file": str(path),
                "line": 2,
                "column": 18,
                "field": "",
                "message": "not valid YAML: mapping values are not allowed here",
            }
        ],
    }
