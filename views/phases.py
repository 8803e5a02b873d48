"""The pipeline's phases in order, as the policy describes them: each transition collects one phase's
completions and starts the next, so N chained transitions show N + 1 phases (phase 2 .. phase 6)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from policies.model import Policy

_NAMED = re.compile(r"^phase_?(\d+)_to_phase_?(\d+)$")
_PHASE_PREFIX = re.compile(r"^phase_?\d+_?")


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    label: str  # "Phase 2"
    role: str  # "raw", "analytics", ... (the phase's own name in the policy, or the trigger topic)
    transition: str | None  # the transition collecting this phase; None for the last, triggered-only one


_CHAINS: dict[int, tuple[Policy, list[str]]] = {}  # by policy object; the policy is kept so ids stay unique


def chain(policy: Policy) -> list[str]:
    """Transitions in pipeline order: each root (nobody's `next`), then its `next` chain; roots by name.
    Remembered per policy object (asked for every audit row the watch sees); a reload brings a new one."""
    known = _CHAINS.get(id(policy))
    if known is not None and known[0] is policy:
        return known[1]
    if len(_CHAINS) > 16:
        _CHAINS.clear()
    ordered = _chain(policy)
    _CHAINS[id(policy)] = (policy, ordered)
    return ordered


def _chain(policy: Policy) -> list[str]:
    targets = {t.next for t in policy.transitions.values() if t.next}
    ordered: list[str] = []
    for root in sorted(name for name in policy.transitions if name not in targets):
        name: str | None = root
        while name is not None and name not in ordered:
            ordered.append(name)
            name = policy.transitions[name].next
    ordered.extend(sorted(set(policy.transitions) - set(ordered)))  # cycles: never validated away, shown last
    return ordered


def phases(policy: Policy) -> list[PhaseSpec]:
    names = chain(policy)
    specs = [PhaseSpec(_label(name, 1), _role(policy.transitions[name].phases[0]), name) for name in names]
    if names:
        last = names[-1]
        topic = policy.transitions[last].publishes_to
        specs.append(PhaseSpec(_label(last, 2), _role(topic), None))
    return specs


def _label(transition: str, side: int) -> str:
    match = _NAMED.match(transition)
    if match is None:
        return transition if side == 1 else f"after {transition}"
    return f"Phase {match.group(side)}"


def _role(name: str) -> str:
    """'phase_2_raw' -> 'raw'; 'nba-phase6-export-trigger' -> 'export'."""
    words = _PHASE_PREFIX.sub("", name.removeprefix("nba-").removesuffix("-trigger")).replace("-", " ")
    return words.replace("_", " ").strip() or name
