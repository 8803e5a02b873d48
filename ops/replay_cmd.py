"""`cascade replay`: the command around ops/replay.py (reading, checking, printing; the replay is there)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from ops import replay as replaying
from ops.exit_codes import EXIT_OK, EXIT_USAGE
from ops.output_paths import check_writable
from ops.policy_file import load_policy
from ops.progress import Progress
from ops.text_input import InputError, open_lines
from policies.loader import PolicyError
from policies.model import Policy

DESCRIPTION = """\
Replay a recorded day through the real engine on a virtual clock: every timer (re-checks, deadlines,
breaker cooldowns, publish retries) fires exactly when it would have, in milliseconds.

The recording is one JSON object per line: {"at", "topic", "message_id", "attributes", "data"}.
It may be gzip-compressed (detected by content, any file name) or `-` for standard input."""

EPILOG = """\
exit codes:
  0  replayed
  2  unusable input: recording, policy, --until, or an --out/--report path that cannot be written
     (checked before the replay starts); one line on stderr: `cascade replay: FILE[:LINE[:COL]]: problem`"""


def add_replay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rep = commands.add_parser(
        "replay",
        help="replay a recorded day through the real engine with a virtual clock",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rep.add_argument(
        "events", type=Path, help="recorded deliveries, one JSON object per line (.gz or - for stdin work)"
    )
    rep.add_argument("--policy", type=Path, help="policy file (default: the built-in NBA policy)")
    rep.add_argument(
        "--until", type=iso_instant, help="replay up to this ISO time (default: last event + 36h)"
    )
    rep.add_argument("--out", type=Path, help="write the timeline here, one JSON object per line")
    rep.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write every date's board and history as one self-contained HTML file",
    )
    rep.add_argument(
        "--quiet", action="store_true", help="print only the per-date summary (no timeline, no log lines)"
    )
    rep.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    # The timeline holds every alert: only errors are worth a log line next to it (see ops.cli.main).
    rep.set_defaults(handler=replay_command, cli_log_level="ERROR")


def iso_instant(text: str) -> datetime:
    """An ISO 8601 instant with a timezone; argparse prints the message as `argument --until: ...`."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r} (e.g. 2025-12-31T09:00:00Z)") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone (e.g. ...Z)")
    return value


def replay_command(args: argparse.Namespace) -> int:
    try:
        _check_outputs(args.out, args.report)
        policy = load_policy(args.policy)
        deliveries = _read(args.events)
    except (PolicyError, replaying.RecordingError, InputError) as exc:
        print(f"cascade replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not deliveries and args.until is None:
        print(f"cascade replay: {args.events}: no deliveries in the recording", file=sys.stderr)
        return EXIT_USAGE
    result = _run(deliveries, policy, args.until)
    try:
        written = _write_outputs(args, result, policy)
    except InputError as exc:  # checked before, yet the disk can fill up or the directory go away
        print(f"cascade replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(summary_json(args.events, len(deliveries), result, written), ensure_ascii=False))
    else:
        _print_text(args.quiet, len(deliveries), result, written)
    return EXIT_OK


def _check_outputs(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            check_writable(path)


def _read(path: Path) -> list[replaying.RecordedDelivery]:
    progress = Progress(f"reading {path}")
    try:
        with open_lines(path) as lines:
            return replaying.read_recording(progress.counted(lines), str(path))
    finally:
        progress.close()


def _run(
    deliveries: list[replaying.RecordedDelivery], policy: Policy, until: datetime | None
) -> replaying.ReplayResult:
    progress = Progress("replaying", total=len(deliveries))
    try:
        return anyio.run(
            replaying.replay,
            deliveries,
            policy,
            until,
            None,
            progress.update,
            backend_options={"use_uvloop": True},
        )
    finally:
        progress.close()


def _write_outputs(
    args: argparse.Namespace, result: replaying.ReplayResult, policy: Policy
) -> dict[str, Any]:
    """Write the timeline and the report (if asked); what was written, by name, for the summary."""
    written: dict[str, Any] = {"timeline": None, "report": None}
    timeline = result.timeline  # a filtered copy of every audit row: build it once
    if args.out:
        with _writing(args.out):
            replaying.write_timeline(timeline, args.out)
        written["timeline"] = {"path": str(args.out), "records": len(timeline)}
    if args.report:
        from ops.report import write_report  # Jinja2 only when a report is asked for

        with _writing(args.report):
            dates = write_report(timeline, policy, args.report, result.until)
        written["report"] = {"path": str(args.report), "dates": dates}
    return written


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise InputError(str(path), f"cannot write ({exc.strerror or exc})") from exc


def summary_json(
    events: Path, deliveries: int, result: replaying.ReplayResult, written: dict[str, Any]
) -> dict[str, Any]:
    """The `--json` summary: one object, the same facts as the text summary."""
    return {
        "events": str(events),
        "deliveries": deliveries,
        "until": f"{result.until:%Y-%m-%dT%H:%M:%SZ}",
        "outcomes": {k.value: v for k, v in result.outcomes.items()},
        "keys": replaying.summary_rows(result),
        **written,
    }


def _print_text(
    quiet: bool, deliveries: int, result: replaying.ReplayResult, written: dict[str, Any]
) -> None:
    if not quiet:
        for row in result.timeline:
            print(replaying.describe(row))
        print()
    print(
        f"replayed {deliveries} deliveries up to {result.until:%Y-%m-%dT%H:%M:%SZ}: "
        + ", ".join(f"{k.value}={v}" for k, v in result.outcomes.items())
    )
    for line in replaying.summary_lines(result):
        print(line)
    if written["timeline"]:
        print(f"timeline: {written['timeline']['path']} ({written['timeline']['records']} records)")
    if written["report"]:
        dates = written["report"]["dates"]
        print(f"report: {written['report']['path']} ({dates} date{'' if dates == 1 else 's'})")
