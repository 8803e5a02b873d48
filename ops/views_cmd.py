"""`cascade status`, `cascade explain`, `cascade slo`: the operator's view on the command line.

Each reads a history from one source (a running daemon with --url, a replay timeline with --timeline, the
BigQuery audit tables with --bigquery), builds the view as JSON (the daemon builds it itself), and prints it
as text or, with --json, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from ops.exit_codes import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.history_source import SourceError, bigquery_rows, fetch_json, timeline_rows
from ops.policy_file import load_policy
from policies.loader import PolicyError
from policies.model import Policy
from views.eta import DurationBook
from views.explain import explain, render_text
from views.history import DayHistory, by_date
from views.render import board_json, board_text, boards, slo_report, slo_text

DEFAULT_URL = "http://localhost:8080"
Json = Any


def add_view_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="the day board: each phase, overall progress and the ETA")
    status.add_argument(
        "game_date",
        nargs="?",
        type=_date,
        metavar="DATE",
        help="one date, YYYY-MM-DD (default: the recent ones)",
    )
    _sources(status, bigquery=False)
    status.set_defaults(handler=_guarded(_status), handler_name="status")

    why = commands.add_parser("explain", help="why a date did or did not trigger, in plain language")
    why.add_argument("game_date", type=_date, metavar="DATE", help="the date to explain, YYYY-MM-DD")
    why.add_argument("--transition", help="only this transition (e.g. phase2_to_phase3)")
    _sources(why, bigquery=True)
    why.set_defaults(handler=_guarded(_explain), handler_name="explain")

    slo = commands.add_parser("slo", help="SLO compliance per objective and per date")
    slo.add_argument("--days", type=_whole_number, default=30, help="rolling window in days (default 30)")
    _sources(slo, bigquery=True)
    slo.set_defaults(handler=_guarded(_slo), handler_name="slo")


def _sources(parser: argparse.ArgumentParser, bigquery: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--url", help=f"a running router (default: $CASCADE_URL or {DEFAULT_URL})")
    group.add_argument(
        "--timeline", type=Path, help="a timeline from `cascade replay --out` (.gz and - work)"
    )
    if bigquery:
        group.add_argument(
            "--bigquery",
            action="store_true",
            help="the BigQuery audit tables (CASCADE_PROJECT, CASCADE_BIGQUERY_DATASET; 365 days back)",
        )
    readers = "--timeline/--bigquery" if bigquery else "--timeline"
    parser.add_argument(
        "--policy", type=Path, help=f"policy file for {readers} (default: the built-in NBA policy)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from exc


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _guarded(command: Callable[[argparse.Namespace], Json]) -> Callable[[argparse.Namespace], int]:
    """Print the view (text or JSON); a source or policy problem is one clear line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        name = args.handler_name
        try:
            data, text = command(args)
        except SourceError as exc:
            print(f"cascade {name}: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE if exc.unavailable else EXIT_USAGE
        except PolicyError as exc:
            print(f"cascade {name}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else "\n".join(text))
        return EXIT_OK

    return run


def _url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("CASCADE_URL") or DEFAULT_URL)


def _policy(args: argparse.Namespace) -> Policy:
    return load_policy(args.policy)


# --- status -------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> tuple[Json, list[str]]:
    if args.timeline is not None:
        rows = timeline_rows(args.timeline)
        days = by_date(rows)
        if args.game_date is not None:
            _require(days, args.game_date, str(args.timeline))
        now = max((r.rows()[-1]["at"] for r in days.values()), default=None)
        at = datetime.fromisoformat(now.replace("Z", "+00:00")) if now else datetime.now(UTC)
        data = {"dates": [board_json(b) for b in boards(list(days.values()), _policy(args), at)]}
        if args.game_date is not None:
            data = {"dates": [d for d in data["dates"] if d["game_date"] == args.game_date.isoformat()]}
    else:
        path = f"/board/{args.game_date}" if args.game_date else "/board"
        data = fetch_json(_url(args), path)
    text: list[str] = []
    for board in data["dates"]:
        text += [*board_text(board), ""]
    return data, text or ["no dates recorded yet"]


# --- explain ------------------------------------------------------------------------------------------


def _explain(args: argparse.Namespace) -> tuple[Json, list[str]]:
    day_wanted: date = args.game_date
    if args.url is not None or (args.timeline is None and not args.bigquery):
        query = {"transition": args.transition} if args.transition else None
        data = fetch_json(_url(args), f"/explain/{day_wanted}", query)
        return data, render_text(data)
    policy = _policy(args)
    if args.timeline is not None:
        rows, where = timeline_rows(args.timeline), str(args.timeline)
    else:
        first = day_wanted - timedelta(days=policy.slo.eta_history_days)
        rows, where = anyio.run(bigquery_rows, first, day_wanted), "BigQuery"
    days = by_date(rows)
    day = _require(days, day_wanted, where)
    _check_transition(args.transition, policy)
    data = explain(day, policy, DurationBook.for_policy(policy, rows), args.transition)
    return data, render_text(data)


def _require(days: dict[date, DayHistory], wanted: date, where: str) -> DayHistory:
    day = days.get(wanted)
    if day is None:
        known = sorted(days)
        span = (
            f"it holds {known[0]} .. {known[-1]} ({len(known)} dates)" if known else "it holds no dated rows"
        )
        raise SourceError(f"no rows for {wanted} in {where}; {span}")
    return day


def _check_transition(transition: str | None, policy: Policy) -> None:
    if transition is not None and transition not in policy.transitions:
        raise SourceError(
            f"unknown transition {transition!r}; known: {', '.join(sorted(policy.transitions))}"
        )


# --- slo ----------------------------------------------------------------------------------------------


def _slo(args: argparse.Namespace) -> tuple[Json, list[str]]:
    if args.days < 1:
        raise SourceError("--days must be at least 1")
    if args.url is not None or (args.timeline is None and not args.bigquery):
        data = fetch_json(_url(args), "/slo", {"days": str(args.days)})
        return data, slo_text(data)
    policy = _policy(args)
    if args.timeline is not None:
        days = by_date(timeline_rows(args.timeline))
        until = max(days) if days else datetime.now(UTC).date()
    else:
        until = datetime.now(UTC).date()
        days = by_date(anyio.run(bigquery_rows, until - timedelta(days=args.days), until))
    data = slo_report(days.values(), policy, until, args.days)
    return data, slo_text(data)
