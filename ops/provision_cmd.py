"""`cascade provision`: the command around ops/provision.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from ops.exit_codes import EXIT_UNAVAILABLE, EXIT_USAGE
from ops.policy_file import load_policy
from policies.loader import PolicyError


def add_provision_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prov = commands.add_parser(
        "provision", help="create topics, subscriptions, dataset and tables (idempotent)"
    )
    prov.add_argument("--project", required=True, help="Google Cloud project (any name on the emulators)")
    prov.add_argument("--policy", type=Path, help="policy file (default: the built-in NBA policy)")
    prov.add_argument("--dataset", default="cascade_audit", help="BigQuery dataset for the audit tables")
    prov.add_argument("--skip-bigquery", action="store_true", help="only Pub/Sub")
    prov.set_defaults(handler=provision_command)


def provision_command(args: argparse.Namespace) -> int:
    # Imported here: replay and check-policy must not pay for the Google client libraries.
    from adapters.errors import CascadeError
    from adapters.pubsub_admin import DEAD_LETTER_TOPIC
    from ops.provision import Endpoints, provision_all

    try:
        policy = load_policy(args.policy)
        endpoints = Endpoints.from_environment()
        lines = anyio.run(
            provision_all,
            args.project,
            policy,
            args.dataset,
            endpoints,
            DEAD_LETTER_TOPIC,
            not args.skip_bigquery,
        )
    except (PolicyError, CascadeError) as exc:
        print(f"cascade provision: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, PolicyError) else EXIT_UNAVAILABLE
    for line in lines:
        print(line)
    return 0
