"""Trigger messages shaped for each downstream's contract.

Phase 4 expects one message per completed phase-3 table; predictions expect the expected/missing lists;
phase 6 reads `target_date`, not `game_date`. Every message of one trigger shares its trigger_id.
"""

from __future__ import annotations

from typing import Any

from policies.decision import CheckResult
from policies.model import Policy, Status, TransitionSpec
from policies.names import table_name
from router.effects import OutMessage, Source
from router.state import DateState


def build_messages(
    state: DateState, policy: Policy, source: Source, degraded: bool, result: CheckResult, trigger_id: str
) -> tuple[OutMessage, ...]:
    transition = policy.transitions[state.key.transition]
    attributes = {
        "trigger_id": trigger_id,
        "game_date": state.key.game_date.isoformat(),
        "transition": state.key.transition,
        "mode": state.mode.value,
        "source": source.value,
        "degraded": "true" if degraded else "false",
    }
    common: dict[str, Any] = {
        "trigger_id": trigger_id,
        "correlation_id": state.correlation_id,
        "trigger_source": "orchestrator",
        "mode": state.mode.value,
        "trigger_reason": _reason(source, result),
        "degraded": degraded,
    }
    bodies = _bodies(state, transition, result, common)
    ordering_key = state.key.game_date.isoformat()
    return tuple(OutMessage(data=body, attributes=attributes, ordering_key=ordering_key) for body in bodies)


def _bodies(
    state: DateState, transition: TransitionSpec, result: CheckResult, common: dict[str, Any]
) -> list[dict[str, Any]]:
    game_date = state.key.game_date.isoformat()
    expected = list(transition.expectation(state.mode).all)
    if transition.payload == "per_table":
        tables = _completed_tables(state, expected)
        shared = {"analysis_date": game_date, "game_date": game_date, **common}
        shared["missing_processors"] = list(result.missing)
        return [{"source_table": table, **shared} for table in tables] or [{"source_table": None, **shared}]
    if transition.payload == "predictions":
        return [
            {"game_date": game_date, "expected_processors": expected, "missing_tables": list(result.missing)}
            | common
        ]
    if transition.payload == "export":
        return [
            {
                "target_date": game_date,
                "export_types": list(transition.export_types),
                "missing_processors": list(result.missing),
            }
            | common
        ]
    return [
        {
            "game_date": game_date,
            "missing_processors": list(result.missing),
            "upstream_processors": sorted(state.reports),
        }
        | common
    ]


def _completed_tables(state: DateState, expected: list[str]) -> list[str]:
    tables = []
    for name in expected:
        report = state.reports.get(name)
        if report is None or report.status is Status.FAILED:
            continue
        tables.append(table_name(report.output_table) if report.output_table else name)
    return tables


def _reason(source: Source, result: CheckResult) -> str:
    detail = "; ".join(result.reasons) if result.reasons else result.decision.value
    return f"{source.value}: {detail}"
