"""Policy text -> validated `Policy`, or a `PolicyError` that names the file, line and field.

Pure: the caller reads the file. On reload the caller keeps the old policy when this raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from policies.model import LocatedError, Policy


@dataclass(frozen=True, slots=True)
class Problem:
    line: int | None
    field: str
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.field or '<root>'}: {self.message}"


class PolicyError(ValueError):
    """The policy file was rejected; `problems` says where and why."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("; ".join(p.render(source) for p in problems))


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in this mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise PolicyError(source, [Problem(line, "", f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise PolicyError(source, [Problem(1, "", "the policy must be a mapping at the top level")])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, [_problem(root, err) for err in exc.errors()]) from exc


def _problem(root: yaml.Node | None, error: Any) -> Problem:
    loc = tuple(str(part) for part in error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedError):
        # Cross-field checks run on the whole model; they name the field they blame themselves.
        loc = loc + cause.path
        return Problem(_line_of(root, loc), ".".join(loc), str(cause))
    return Problem(_line_of(root, loc), ".".join(loc), error["msg"])


def _line_of(node: yaml.Node | None, loc: tuple[str, ...]) -> int | None:
    """Walk the YAML node tree along the pydantic error location; the deepest field found gives the line.

    A mapping entry is reported at its key's line (for `alertz:` followed by a block, the line that holds
    the misspelt key, not the block's first child).
    """
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        line, node = found
    return line


def _child(node: yaml.Node | None, part: str) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key.start_mark.line + 1, value
        return None
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        item = node.value[int(part)]
        return item.start_mark.line + 1, item
    return None
