"""Reading the policy file: the only place the policy touches the file system."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ops.text_input import InputError, read_text
from policies.loader import PolicyError, Problem, parse_policy
from policies.model import Policy

DEFAULT_POLICY = "nba.yaml"


def default_policy_text() -> tuple[str, str]:
    resource = resources.files("policies").joinpath(DEFAULT_POLICY)
    return resource.read_text(encoding="utf-8"), f"policies/{DEFAULT_POLICY} (built in)"


def load_policy(path: Path | None) -> Policy:
    """The policy at `path`, or the built-in default. Raises `PolicyError` naming file, line and field."""
    if path is None:
        text, source = default_policy_text()
        return parse_policy(text, source)
    try:
        text = read_text(path)
    except InputError as exc:
        raise PolicyError(str(path), [Problem(None, "", exc.problem)]) from exc
    return parse_policy(text, str(path))
