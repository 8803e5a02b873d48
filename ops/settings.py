"""Process settings from the environment, validated once at start.

Every setting is read from `CASCADE_<NAME>` except the names other tools already use: `PORT` (Cloud Run),
`GOOGLE_CLOUD_PROJECT` (also accepted for the project), and the emulator hosts the Google clients honour
(`PUBSUB_EMULATOR_HOST`, `FIRESTORE_EMULATOR_HOST`, `BIGQUERY_EMULATOR_HOST`). Units are in the names.

Only the composition root reads the environment: it calls `load_settings(os.environ)`, which reports every
invalid variable at once, by its environment name, as a `ConfigurationError`.
"""

from __future__ import annotations

import difflib
import os
import socket
import tempfile
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from adapters.errors import ConfigurationError
from adapters.resource_names import DEFAULT_BIGQUERY_LOCATION, DEFAULT_NAMES, ResourceNames

PREFIX = "CASCADE_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or "/" in value or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError("must be host:port without a scheme, e.g. localhost:8085")
    return value


def _no_blanks(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be non-empty and contain no whitespace")
    return value


def _below_cloud_run_limit(value: float) -> float:
    if value >= 10:
        raise ValueError("must be below 10: Cloud Run kills the container 10 s after SIGTERM")
    return value


# host:port, as the Google client libraries expect it.
EmulatorHost = Annotated[str, AfterValidator(_host_port)]
Name = Annotated[str, AfterValidator(_no_blanks)]

# The mapping `load_settings` reads instead of `os.environ` (a context variable, so concurrent callers such as
# parallel tests never see each other's environment).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("cascade_settings_environ", default=None)


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        # Unknown keyword arguments are rejected; unknown CASCADE_* variables are rejected by `load_settings`
        # (pydantic-settings' environment source only looks up the declared fields).
        extra="forbid",
        env_prefix=PREFIX,
        # An empty variable counts as unset (a deployment template that blanks a value gets the default).
        env_ignore_empty=True,
        validate_default=True,
        populate_by_name=True,
    )

    # Google Cloud. Each `description` is the variable's one line in `cascade run --help`.
    project: Name = Field(
        validation_alias=AliasChoices("CASCADE_PROJECT", "GOOGLE_CLOUD_PROJECT"),
        description="Google Cloud project (required; any name on the emulators)",
    )
    pubsub_emulator_host: EmulatorHost | None = Field(
        default=None, validation_alias="PUBSUB_EMULATOR_HOST", description="host:port of the Pub/Sub emulator"
    )
    firestore_emulator_host: EmulatorHost | None = Field(
        default=None,
        validation_alias="FIRESTORE_EMULATOR_HOST",
        description="host:port of the Firestore emulator",
    )
    bigquery_emulator_host: EmulatorHost | None = Field(
        default=None,
        validation_alias="BIGQUERY_EMULATOR_HOST",
        description="host:port of the BigQuery emulator",
    )

    # Names of the things cascade talks to; the defaults live in `adapters.resource_names`.
    subscription_prefix: Name = Field(
        default=DEFAULT_NAMES.subscription_prefix,
        description="completion topic T is consumed through subscription PREFIX + T",
    )
    dead_letter_topic: Name = Field(
        default=DEFAULT_NAMES.dead_letter_topic,
        description="malformed messages go here (kept by its subscription NAME-audit)",
    )
    alert_topic: Name = Field(default=DEFAULT_NAMES.alert_topic, description="SLO and stuck-date alerts")
    status_topic: Name = Field(default=DEFAULT_NAMES.status_topic, description="each key's outcome")
    firestore_collection: Name = Field(
        default=DEFAULT_NAMES.firestore_collection, description="Firestore collection of the shared state"
    )
    bigquery_dataset: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,1024}$")] = Field(
        default=DEFAULT_NAMES.bigquery_dataset, description="BigQuery dataset of the audit tables"
    )
    bigquery_location: Name = Field(
        default=DEFAULT_BIGQUERY_LOCATION,
        description="where `cascade provision` creates the dataset (BigQuery's default: US)",
    )

    # The process
    policy_path: Path | None = Field(
        default=None, description="policy file (default: the built-in NBA policy)"
    )
    port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        validation_alias="PORT",
        description="HTTP port (health, status, metrics)",
    )
    log_level: LogLevel = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    # Cloud Run sends SIGKILL 10 s after SIGTERM; the drain must end before that.
    shutdown_grace_s: Annotated[float, Field(gt=0), AfterValidator(_below_cloud_run_limit)] = Field(
        default=8.0, description="seconds to drain and flush after SIGTERM (below 10)"
    )
    instance_id: Name = Field(
        default_factory=_default_instance_id, description="this process in claims and logs (default host-pid)"
    )
    audit_spool_path: Path = Field(
        default=Path(tempfile.gettempdir()) / "cascade-audit.spool.jsonl",
        description="audit rows BigQuery has not confirmed, kept on disk",
    )
    # The Firestore-outage journal (README, "When Firestore is down"); None: next to the audit spool.
    journal_path: Path | None = Field(
        default=None, description="the Firestore-outage journal (default: next to the audit spool)"
    )
    claim_lease_s: float = Field(default=60.0, gt=0, description="how long a trigger claim is held")
    max_in_flight: int = Field(default=64, ge=1, le=10_000, description="messages handled at once")
    # Acks (and nacks) go to Pub/Sub in one request per subscription once this many wait, or this long after
    # the first began to wait (2,500 ids is Pub/Sub's limit per request; a longer delay only holds acks back).
    ack_batch_max: int = Field(default=100, ge=1, le=2_500, description="acks sent in one request at most")
    ack_batch_delay_s: float = Field(
        default=0.2, ge=0, le=1.0, description="how long an ack waits to share a request"
    )
    admin_token: SecretStr | None = Field(
        default=None, description="bearer token of the admin endpoints (unset: they are disabled)"
    )
    recent_days: int = Field(
        default=3, ge=1, le=60, description="game dates back that /status shows and a restart rebuilds"
    )

    @property
    def names(self) -> ResourceNames:
        """The resource names, as `cascade provision`, the startup check and the engine take them."""
        return ResourceNames(
            subscription_prefix=self.subscription_prefix,
            dead_letter_topic=self.dead_letter_topic,
            alert_topic=self.alert_topic,
            status_topic=self.status_topic,
            firestore_collection=self.firestore_collection,
            bigquery_dataset=self.bigquery_dataset,
        )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments, then the environment; no .env files or secret directories behind our back.
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _MappingEnvSource(settings_cls, environ)
        return init_settings, env


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading a given mapping instead of `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        # Same normalisation as the os.environ source: case-insensitive names, empty values ignored.
        self.env_vars = {key.lower(): value for key, value in environ.items() if value != ""}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from `environ`; `ConfigurationError` listing every bad variable by name and why."""
    problems = _unknown_variables(environ)
    token = _ENVIRON.set(environ)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems += [f"{_env_name(err['loc'])}: {err['msg']}" for err in exc.errors()]
    finally:
        _ENVIRON.reset(token)
    if problems:
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def env_names() -> dict[str, tuple[str, ...]]:
    """Field name -> the environment variables that set it, preferred first."""
    names: dict[str, tuple[str, ...]] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            names[field] = (alias,)
        elif isinstance(alias, AliasChoices):
            names[field] = tuple(c for c in alias.choices if isinstance(c, str))
        else:
            names[field] = (PREFIX + field.upper(),)
    return names


def env_descriptions() -> dict[str, str]:
    """Each environment variable (the preferred one, alternatives after "or") -> its one-line meaning."""
    return {
        " or ".join(env_names()[field]): info.description or ""
        for field, info in Settings.model_fields.items()
    }


# What a command that takes `--project` says when neither the flag nor the environment names one.
NO_PROJECT = "no project: pass --project or set CASCADE_PROJECT (or GOOGLE_CLOUD_PROJECT)"


def project_from(environ: Mapping[str, str], flag: str | None = None) -> str | None:
    """The project as every command takes it: the flag, else CASCADE_PROJECT, else GOOGLE_CLOUD_PROJECT."""
    candidates = [flag, *(environ.get(name) for name in env_names()["project"])]
    return next((value for value in candidates if value), None)


def _env_name(loc: tuple[int | str, ...]) -> str:
    key = str(loc[0]) if loc else ""
    for field, names in env_names().items():
        if key.lower() == field or key.upper() in names:
            return " or ".join(names)
    return key


# Read by the command line (`cascade status | explain | slo`), not by the router: known, never an error.
CLIENT_VARIABLES = frozenset({"CASCADE_URL"})


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """`extra="forbid"` for the environment: a misspelt CASCADE_ variable is an error, not a default."""
    known = {name for names in env_names().values() for name in names} | CLIENT_VARIABLES
    problems = []
    for key in sorted(environ):
        if key.upper().startswith(PREFIX) and key.upper() not in known:
            close = difflib.get_close_matches(key.upper(), sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{key}: not a cascade setting{hint}")
    return problems
