"""`cascade provision`: the command around ops/provision.py.

The project and the resource names are read like `cascade run` reads them (`ops.settings.load_settings`, with
the flags written over the environment), so what provision creates is what run's startup check looks for.
That includes run's check of unknown CASCADE_ variables: a misspelt CASCADE_DEAD_LETER_TOPIC must not make
provision quietly create the default name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import anyio

from adapters.errors import CascadeError, ConfigurationError
from ops.exit_codes import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from ops.help_text import epilog, paragraph
from ops.policy_file import load_policy
from ops.settings import NO_PROJECT, Settings, load_settings, project_from
from policies.loader import PolicyError
from policies.model import Policy

NAME_FIELDS = (
    "project",
    "pubsub_emulator_host",
    "bigquery_emulator_host",
    "policy_path",
    "subscription_prefix",
    "dead_letter_topic",
    "alert_topic",
    "status_topic",
    "bigquery_dataset",
    "bigquery_location",
)
EXIT_CODES = {
    EXIT_OK: "everything exists (created now or before)",
    EXIT_USAGE: "no project, invalid settings or policy, no credentials, or a resource exists in a form "
    "cascade cannot use (a subscription on another topic, the dataset in another location)",
    EXIT_UNAVAILABLE: "Pub/Sub or BigQuery did not answer: worth retrying",
}
# Each flag stands for the environment variable next to it (and wins over it).
FLAG_VARIABLES = {
    "project": "CASCADE_PROJECT",
    "policy": "CASCADE_POLICY_PATH",
    "dataset": "CASCADE_BIGQUERY_DATASET",
    "location": "CASCADE_BIGQUERY_LOCATION",
}


def add_provision_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prov = commands.add_parser(
        "provision",
        help="create topics, subscriptions, dataset and tables (idempotent)",
        description=paragraph(
            "Create every Pub/Sub topic and subscription the policy needs (completion subscriptions with the "
            "dead-letter policy, trigger topics, the dead-letter topic and its audit subscription, the alert "
            "and status topics) and the BigQuery audit dataset and tables. Safe to run again: what exists is "
            "kept; an existing subscription that could expire when idle is changed to never expire. Names "
            "and project are read from the environment like `cascade run` reads them; flags win. Uses the "
            "emulators when PUBSUB_EMULATOR_HOST / BIGQUERY_EMULATOR_HOST are set."
        ),
        epilog=epilog(NAME_FIELDS, EXIT_CODES),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prov.add_argument(
        "--project", help="Google Cloud project (default: CASCADE_PROJECT, then GOOGLE_CLOUD_PROJECT)"
    )
    prov.add_argument(
        "--policy", type=Path, help="policy file (default: CASCADE_POLICY_PATH, else the built-in NBA policy)"
    )
    prov.add_argument(
        "--dataset", help="BigQuery dataset for the audit tables (default: CASCADE_BIGQUERY_DATASET)"
    )
    prov.add_argument(
        "--location",
        help="where a new dataset is created (default: CASCADE_BIGQUERY_LOCATION, else US as in BigQuery)",
    )
    prov.add_argument("--skip-bigquery", action="store_true", help="only Pub/Sub")
    prov.add_argument(
        "--json", action="store_true", help="print one JSON object (created, existing, updated, dataset, ...)"
    )
    prov.set_defaults(handler=provision_command)


def provision_command(args: argparse.Namespace) -> int:
    # Imported here: replay and check-policy must not pay for the Google client libraries.
    from adapters.credentials import credentials_problem
    from ops.provision import Endpoints, provision_all

    environ = {**os.environ, **_flag_variables(args)}
    try:
        settings, policy = _configuration(environ)
    except (PolicyError, CascadeError) as exc:
        return _fail(str(exc))
    if problem := credentials_problem(
        ["Pub/Sub"] if args.skip_bigquery else ["Pub/Sub", "BigQuery"], environ
    ):
        return _fail(problem)
    try:
        report = anyio.run(
            provision_all,
            settings.project,
            policy,
            Endpoints.from_environment(environ),
            settings.names,
            settings.bigquery_location,
            not args.skip_bigquery,
        )
    except CascadeError as exc:
        return _fail(str(exc), EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_UNAVAILABLE)
    print(json.dumps(report.as_json()) if args.json else "\n".join(report.lines()))
    return EXIT_OK


def _flag_variables(args: argparse.Namespace) -> dict[str, str]:
    return {
        variable: str(value) for flag, variable in FLAG_VARIABLES.items() if (value := getattr(args, flag))
    }


def _configuration(environ: Mapping[str, str]) -> tuple[Settings, Policy]:
    """The settings as `cascade run` would read them from `environ`, and the policy they name."""
    if project_from(environ) is None:  # before the settings: their message would not mention --project
        raise ConfigurationError(NO_PROJECT)
    settings = load_settings(environ)
    return settings, load_policy(settings.policy_path)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"cascade provision: {message}", file=sys.stderr)
    return code
