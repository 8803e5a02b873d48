"""The `cascade` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import anyio

from ops import replay as replaying
from ops.exit_codes import EXIT_USAGE
from ops.policy_file import load_policy
from ops.provision_cmd import add_provision_command
from ops.publish_cmd import add_publish_command
from ops.run_cmd import add_run_command
from ops.views_cmd import add_view_commands
from policies.loader import PolicyError


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # `cascade ... | head`: the reader left; not an error. Point stdout at devnull so the interpreter's
        # final flush does not raise again (the recipe in the Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cascade", description="Event-driven phase router.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    rep = commands.add_parser(
        "replay", help="replay a recorded day through the real engine with a virtual clock"
    )
    rep.add_argument("events", type=Path, help="recorded deliveries, one JSON object per line")
    rep.add_argument("--policy", type=Path, help="policy file (default: the built-in NBA policy)")
    rep.add_argument("--until", type=_instant, help="replay up to this ISO time (default: last event + 36h)")
    rep.add_argument("--out", type=Path, help="write the timeline here, one JSON object per line")
    rep.add_argument(
        "--report",
        type=Path,
        metavar="FILE.html",
        help="also write every date's board and history as one self-contained HTML file",
    )
    rep.add_argument("--quiet", action="store_true", help="print only the per-date summary")
    rep.set_defaults(handler=_replay)

    add_run_command(commands)
    add_provision_command(commands)
    add_publish_command(commands)
    add_view_commands(commands)

    check = commands.add_parser("check-policy", help="validate a policy file and exit")
    check.add_argument("policy", type=Path)
    check.set_defaults(handler=_check_policy)
    return parser


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a timezone (e.g. ...Z)")
    return value


def _replay(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
        with args.events.open(encoding="utf-8") as events:
            deliveries = replaying.read_recording(events, str(args.events))
    except (PolicyError, replaying.RecordingError, OSError) as exc:
        print(f"cascade replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = anyio.run(replaying.replay, deliveries, policy, args.until, backend_options={"use_uvloop": True})
    timeline = result.timeline  # a filtered copy of every audit row: build it once
    if not args.quiet:
        for row in timeline:
            print(replaying.describe(row))
        print()
    print(
        f"replayed {len(deliveries)} deliveries up to {result.until:%Y-%m-%dT%H:%M:%SZ}: "
        + ", ".join(f"{k.value}={v}" for k, v in result.outcomes.items())
    )
    for line in replaying.summary_lines(result):
        print(line)
    if args.out:
        replaying.write_timeline(timeline, args.out)
        print(f"timeline: {args.out} ({len(timeline)} records)")
    if args.report:
        from ops.report import write_report  # Jinja2 only when a report is asked for

        dates = write_report(timeline, policy, args.report, result.until)
        print(f"report: {args.report} ({dates} date{'' if dates == 1 else 's'})")
    return 0


def _check_policy(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem.render(exc.source), file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.policy}: ok ({len(policy.transitions)} transitions, {len(policy.processors)} processors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
