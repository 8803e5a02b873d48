"""The running policy, and its reload: build a new model, validate, diff, swap the reference.

Why a reload never changes a decision half-way: the engine reads the policy through `holder.current` once
per step (`Engine._apply` takes `policy = self._policy()` and hands that object to the sync and the step),
and a `Policy` is frozen. A step that started before the swap finishes with the object it already holds;
the next step sees the new one. The swap is one assignment of a reference, so a reader sees the old or the
new policy, never a mix. Pinned modes stay pinned: the mode lives in each key's `DateState`, not in the
policy, and a reload does not recompute it (later steps apply the new policy's rules for that pinned mode).
Note: `Engine.deliver` reads the policy for intake and again for the step, so one delivery may be accepted
under the old policy and decided under the new one; each of the two is consistent in itself.

An invalid or unreadable file changes nothing: the old policy keeps running and the result lists the
problems as `file:line: field: problem`. That holds for EVERY failure, not only the ones the loader names:
a file replaced while it is read can be empty, cut inside a multi-byte character (UnicodeDecodeError) or
inside a value a validator hands to the OS (a timezone cut to `America` made `zoneinfo` raise
IsADirectoryError) — each is a rejection with its reason, never a traceback. Counting failures in a metric
is the caller's job (`result.ok`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.policy_file import load_policy
from policies.loader import PolicyError, Problem
from policies.model import Policy

log = logging.getLogger("cascade.policy")

MAX_VALUE_CHARS = 60


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    source: str
    # `path: old -> new`, `path: added value`, `path: removed (was value)`; empty when nothing changed.
    changes: tuple[str, ...] = ()
    # `file:line: field: problem` for a rejected file; the old policy is still in force.
    problems: tuple[str, ...] = ()
    error: PolicyError | None = None


class PolicyHolder:
    def __init__(self, initial: Policy, path: Path | None) -> None:
        self._policy = initial
        self._path = path
        self._source = str(path) if path is not None else "built-in policy"
        # Serialises reloads (each diff is against the policy it replaces); readers never take it.
        self._reloading = threading.Lock()
        self.generation = 0  # successful swaps so far

    def current(self) -> Policy:
        """The policy in force; pass this method (not its result) to the engine."""
        return self._policy

    def _load(self) -> Policy:
        """The file's policy; any failure is a `PolicyError` naming the file (and line and field if known)."""
        try:
            return load_policy(self._path)
        except PolicyError:
            raise
        except Exception as exc:  # whatever a half-replaced file makes the loader raise is a rejection
            problem = Problem(None, "", f"unreadable or incomplete file ({type(exc).__name__}: {exc})")
            raise PolicyError(self._source, [problem]) from exc

    def reload(self) -> ReloadResult:
        """Re-read the file; on success swap and return the diff, else keep the old policy.

        Blocking (reads a small file): call it from a worker thread if the event loop must not wait.
        """
        with self._reloading:
            old = self._policy
            try:
                new = self._load()
            except PolicyError as exc:
                problems = tuple(p.render(exc.source) for p in exc.problems)
                log.error(
                    "policy reload rejected, keeping the running policy: %s",
                    "; ".join(problems),
                    extra={"policy_source": self._source, "problems": list(problems)},
                )
                return ReloadResult(ok=False, source=self._source, problems=problems, error=exc)
            changes = tuple(diff(old.model_dump(mode="json"), new.model_dump(mode="json")))
            self._policy = new  # the atomic swap: one reference assignment
            self.generation += 1
        log.info(
            "policy reloaded from %s: %s",
            self._source,
            f"{len(changes)} change(s)" if changes else "no changes",
            extra={"policy_source": self._source, "changes": list(changes)},
        )
        return ReloadResult(ok=True, source=self._source, changes=changes)


def diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Readable changes between two dumps, by dotted path; a subtree only on one side is one line."""
    lines: list[str] = []
    for key in sorted(old.keys() | new.keys(), key=str):
        path = f"{prefix}{key}"
        if key not in new:
            lines.append(f"{path}: removed (was {shorten(old[key])})")
        elif key not in old:
            lines.append(f"{path}: added {shorten(new[key])}")
        elif isinstance(old[key], Mapping) and isinstance(new[key], Mapping):
            lines.extend(diff(old[key], new[key], f"{path}."))
        elif old[key] != new[key]:
            lines.append(f"{path}: {shorten(old[key])} -> {shorten(new[key])}")
    return lines


def shorten(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
