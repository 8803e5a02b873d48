"""`cascade check-policy`: validate a policy file (CI runs it before a deploy)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ops.exit_codes import EXIT_OK, EXIT_USAGE
from ops.policy_file import load_policy
from policies.loader import PolicyError

EPILOG = """\
exit codes:
  0  the policy is valid (prints its counts)
  2  the file is unreadable or invalid: one line per problem on stderr, `FILE[:LINE[:COL]]: [FIELD: ]problem`
     (with --json, the problems as a list on stdout)"""


def add_check_policy_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check-policy",
        help="validate a policy file and exit",
        description="Validate a policy file (YAML) against the policy model: fields, values, cross-checks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("policy", type=Path, help="the policy file (YAML, UTF-8)")
    check.add_argument("--json", action="store_true", help="print the result as one JSON object")
    check.set_defaults(handler=check_policy_command)


def check_policy_command(args: argparse.Namespace) -> int:
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        if args.json:
            print(json.dumps({"file": exc.source, "ok": False, "problems": problems_json(exc)}))
        else:
            print("\n".join(p.render(exc.source) for p in exc.problems), file=sys.stderr)
        return EXIT_USAGE
    transitions, processors = len(policy.transitions), len(policy.processors)
    if args.json:
        counts = {"transitions": transitions, "processors": processors}
        print(json.dumps({"file": str(args.policy), "ok": True, **counts}))
    else:
        print(f"{args.policy}: ok ({transitions} transitions, {processors} processors)")
    return EXIT_OK


def problems_json(exc: PolicyError) -> list[dict[str, Any]]:
    return [
        {"file": exc.source, "line": p.line, "column": p.column, "field": p.field, "message": p.message}
        for p in exc.problems
    ]
