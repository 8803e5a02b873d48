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
    field: str  # dotted path; "" when the problem is the file itself (unreadable, not YAML)
    message: str
    column: int | None = None

    def render(self, source: str) -> str:
        """`file:line:col: field: message`, each part only when known (every cascade command's format)."""
        where = source
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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
        raise PolicyError(source, [_yaml_problem(exc)]) from exc
    if not isinstance(data, dict):
        raise PolicyError(source, [Problem(1, "", "the policy must be a mapping at the top level")])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, [_problem(root, err) for err in exc.errors()]) from exc


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    """PyYAML's message spans lines and repeats the position; one line, positioned by the problem's mark."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return Problem(None, "", text)
    return Problem(mark.line + 1, "", text, column=mark.column + 1)


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
