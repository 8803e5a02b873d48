"""docker-compose.yml and ops/cloudrun/service.yaml without Docker: the compose file against the compose-spec
JSON schema (the copy check-jsonschema vendors; `make lint` runs the same check from the command line), and
the references between services and to the router's settings, which no schema can see."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from ops.settings import env_names

ROOT = Path(__file__).resolve().parents[2]
# Variables the router's process reads that are not settings: Python's own, and the CLI's (ops/settings.py).
NOT_SETTINGS = frozenset({"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "CASCADE_URL"})


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves <<: merges
    return loaded


def compose_spec() -> jsonschema.protocols.Validator:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator: jsonschema.protocols.Validator = jsonschema.validators.validator_for(schema)(schema)
    return validator


def known_variables() -> set[str]:
    return {name for names in env_names().values() for name in names} | NOT_SETTINGS


def test_the_compose_file_is_valid_under_the_compose_spec() -> None:
    errors = [f"{error.json_path}: {error.message}" for error in compose_spec().iter_errors(compose())]
    assert errors == []


def test_the_compose_spec_check_catches_a_misspelt_condition() -> None:
    """The check above is not vacuous: the schema is loaded and applied."""
    broken = compose()
    broken["services"]["router"]["depends_on"]["pubsub"] = {"condition": "service_healty"}
    assert list(compose_spec().iter_errors(broken))


def test_every_service_a_service_depends_on_exists() -> None:
    services = compose()["services"]
    for name, service in services.items():
        missing = set(service.get("depends_on", {})) - set(services)
        assert not missing, f"{name} depends on {missing}"


def test_services_that_wait_for_health_depend_on_a_healthcheck() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for other, how in service.get("depends_on", {}).items():
            if how.get("condition") == "service_healthy":
                assert "healthcheck" in services[other], f"{name} waits for {other}'s health, it has no check"


@pytest.mark.parametrize("service", ["provision", "router", "replayer"])
def test_the_cascade_services_set_only_variables_the_settings_know(service: str) -> None:
    environment = set(compose()["services"][service].get("environment", {}))
    assert environment - known_variables() == set()


def test_the_cloud_run_router_sets_only_variables_the_settings_know() -> None:
    service = yaml.safe_load((ROOT / "ops/cloudrun/service.yaml").read_text())
    (router,) = [c for c in service["spec"]["template"]["spec"]["containers"] if c["name"] == "router"]
    environment = {variable["name"] for variable in router["env"]}
    assert environment - known_variables() == set()
    assert not {name for name in environment if name.endswith("_EMULATOR_HOST")}


def test_the_router_image_entrypoint_takes_the_compose_and_cloud_run_commands() -> None:
    """Both run the image's ENTRYPOINT (`cascade`) with a subcommand, never a shell command."""
    service = yaml.safe_load((ROOT / "ops/cloudrun/service.yaml").read_text())
    (router,) = [c for c in service["spec"]["template"]["spec"]["containers"] if c["name"] == "router"]
    assert "command" not in router and router["args"] == ["run"]
    assert compose()["services"]["router"]["command"] == ["run"]
    assert '\nENTRYPOINT ["cascade"]\n' in (ROOT / "Dockerfile").read_text()
