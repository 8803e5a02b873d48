"""The recorded example days replay with exactly the expected triggers, alerts and dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from ops.cli import main
from ops.replay import ReplayResult, read_recording, replay
from policies.model import Policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALL_FOUR = ["phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6"]


def run(name: str, policy: Policy) -> ReplayResult:
    with (EXAMPLES / name).open() as lines:
        deliveries = read_recording(lines, name)
    return anyio.run(replay, deliveries, policy, None)


def trigger_summary(result: ReplayResult) -> list[tuple[str, str, str, bool, int]]:
    """(game_date, transition, source, degraded, messages) per trigger_id, in publish order."""
    groups: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for row in result.triggers():
        groups.setdefault(row["trigger_id"], []).append(row)  # type: ignore[arg-type]
    return [
        (rows[0]["game_date"], rows[0]["transition"], rows[0]["source"], rows[0]["degraded"], len(rows))
        for rows in groups.values()
    ]


def test_overnight_day_cascades_from_phase_2_to_phase_6(policy: Policy) -> None:
    result = run("overnight_full_cascade.jsonl", policy)
    assert trigger_summary(result) == [
        ("2025-12-30", "phase2_to_phase3", "cascade", False, 1),
        ("2025-12-30", "phase3_to_phase4", "cascade", False, 5),  # one message per phase-3 table
        ("2025-12-30", "phase4_to_phase5", "cascade", False, 1),
        ("2025-12-30", "phase5_to_phase6", "cascade", False, 1),
    ]
    assert {row["mode"] for row in result.triggers()} == {"overnight"}
    assert result.alerts() == []


def test_overnight_trigger_payloads_follow_each_downstream_contract(policy: Policy) -> None:
    result = run("overnight_full_cascade.jsonl", policy)
    by_transition: dict[str, list[dict]] = {}  # type: ignore[type-arg]
    for row in result.triggers():
        by_transition.setdefault(row["transition"], []).append(row["payload"])  # type: ignore[arg-type]
    phase4 = by_transition["phase3_to_phase4"]
    assert sorted(p["source_table"] for p in phase4) == sorted(
        [
            "player_game_summary",
            "team_defense_game_summary",
            "team_offense_game_summary",
            "upcoming_team_game_context",
            "upcoming_player_game_context",
        ]
    )
    for payload in phase4:
        assert payload["analysis_date"] == payload["game_date"] == "2025-12-30"
        assert (
            payload["trigger_source"] == "orchestrator"
            and payload["correlation_id"] == "c-20251230-overnight"
        )
        assert {"mode", "trigger_reason", "degraded", "missing_processors"} <= set(payload)
    [predictions] = by_transition["phase4_to_phase5"]
    assert predictions["expected_processors"][:2] == ["player_daily_cache", "ml_feature_store"]
    assert predictions["missing_tables"] == [] and predictions["degraded"] is False
    [export] = by_transition["phase5_to_phase6"]
    assert export["target_date"] == "2025-12-30" and "game_date" not in export
    assert export["export_types"] == list(policy.transitions["phase5_to_phase6"].export_types)


def test_every_trigger_message_carries_the_routing_attributes(policy: Policy) -> None:
    result = run("overnight_full_cascade.jsonl", policy)
    triggers = [m for m in result.published.messages if m.topic.endswith("-trigger")]
    assert len(triggers) == 8
    for message in triggers:
        assert set(message.attributes) == {
            "trigger_id",
            "game_date",
            "transition",
            "mode",
            "source",
            "degraded",
        }
        assert message.ordering_key == "2025-12-30"
        assert json.loads(message.data)["trigger_id"] == message.attributes["trigger_id"]


def test_same_day_run_with_only_upcoming_processors_proceeds_and_degrades_at_96_percent(
    policy: Policy,
) -> None:
    result = run("same_day_upcoming_only.jsonl", policy)
    assert trigger_summary(result) == [
        ("2026-01-15", "phase2_to_phase3", "cascade", False, 1),
        ("2026-01-15", "phase3_to_phase4", "cascade", False, 1),
        ("2026-01-15", "phase4_to_phase5", "cascade", False, 1),
        ("2026-01-15", "phase5_to_phase6", "cascade", True, 1),
    ]
    assert {row["mode"] for row in result.triggers()} == {"same_day"}


def test_day_whose_critical_processor_never_reports_alerts_and_never_triggers(policy: Policy) -> None:
    result = run("critical_never_reports.jsonl", policy)
    assert result.triggers() == []
    # The date watch adds its own: the ETA passes the SLO deadline before self-heal, then the date ends failed.
    assert [(a["alert"], a["severity"]) for a in result.alerts()] == [
        ("fallback_deadline_missed", "CRITICAL"),
        ("slo_at_risk", "WARNING"),
        ("self_heal", "WARNING"),
        ("manual_intervention_required", "CRITICAL"),
        ("slo_violation", "ERROR"),
    ]
    [fallback] = [a for a in result.alerts() if a["alert"] == "fallback_deadline_missed"]
    assert fallback["missing"] == ["nbac_gamebook"] and fallback["mode"] == "overnight"
    assert (
        fallback["next_action"].startswith("self-heal deadline")
        and fallback["next_at"] == "2026-02-04T13:00:00Z"
    )
    timer_decisions = [r for r in result.timeline if r["kind"] == "decision" and r["cause"] == "timer"]
    assert timer_decisions, "the router must re-check on its own while no message arrives"
    assert all("nbac_gamebook" in r["missing"] and r["decision"] == "WAIT" for r in timer_decisions)
    assert timer_decisions[-1]["missing"] == ["nbac_gamebook"]


def test_duplicates_reordering_unknown_and_malformed_input_still_trigger_once(policy: Policy) -> None:
    result = run("duplicates_out_of_order_unknown.jsonl", policy)
    assert [(t[1], t[2]) for t in trigger_summary(result)] == [(name, "cascade") for name in ALL_FOUR]
    assert {o.value: n for o, n in result.outcomes.items()} == {
        "routed": 20,
        "duplicate": 1,
        "dead_lettered": 1,
    }
    [dead] = [r for r in result.timeline if r["kind"] == "dead_letter"]
    assert dead["message_id"] == "20260308-garbled" and dead["reason"].startswith("not JSON")
    assert [a["alert"] for a in result.alerts()] == ["unknown_processor"]
    dead_letters = result.published.on("cascade-dead-letter")
    assert len(dead_letters) == 1 and dead_letters[0].attributes["reason"].startswith("not JSON")


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.jsonl")))
def test_timeline_records_have_the_fixed_fields(name: str, policy: Policy) -> None:
    fields = {
        "decision": {
            "at", "kind", "game_date", "transition", "mode", "decision", "completeness", "quality_score",
            "missing", "reasons",
        },
        "trigger": {
            "at", "kind", "game_date", "transition", "mode", "topic", "trigger_id", "source", "degraded", "payload",
        },
        "alert": {
            "at", "kind", "alert", "severity", "game_date", "transition", "message", "mode", "missing", "next_action",
            "next_at",
        },
        "dead_letter": {"at", "kind", "topic", "message_id", "reason"},
        "input": {
            "at", "kind", "game_date", "transition", "processor", "raw_name", "status", "message_id", "reported_at",
            "record_count", "mode_hint",
        },
        "phase_completion": {
            "at", "kind", "game_date", "transition", "mode", "outcome", "source", "trigger_id", "opened_at", "ended_at",
            "completeness", "processors_reported", "missing",
        },
        "slo": {
            "at", "kind", "game_date", "mode", "outcome", "first_input_at", "ended_at", "end_to_end_s", "completeness",
            "quality", "triggered", "by_source", "results",
        },
    }  # fmt: skip
    result = run(name, policy)
    assert result.timeline
    for row in result.timeline:
        assert fields[row["kind"]] <= set(row)
        assert row["at"].endswith("Z") and "+" not in row["at"]


def test_cli_replay_writes_the_timeline_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "timeline.jsonl"
    code = main(["replay", str(EXAMPLES / "overnight_full_cascade.jsonl"), "--out", str(out), "--quiet"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(1 for r in rows if r["kind"] == "trigger") == 8
    printed = capsys.readouterr().out
    assert "2025-12-30 phase5_to_phase6" in printed and "triggered" in printed


def test_cli_replay_until_stops_before_the_deadlines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["replay", str(EXAMPLES / "critical_never_reports.jsonl"), "--until", "2026-02-04T10:00:00Z"])
    assert code == 0
    assert "fallback_deadline_missed" not in capsys.readouterr().out


def test_cli_rejects_a_broken_recording_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    good = (EXAMPLES / "overnight_full_cascade.jsonl").read_text().splitlines()[0]
    events.write_text(good + "\n{not json\n")
    assert main(["replay", str(events)]) == 2
    assert f"{events}:2:" in capsys.readouterr().err


def test_cli_rejects_a_bad_policy_naming_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ops.policy_file import default_policy_text

    text, _ = default_policy_text()
    bad = text.replace("failure_threshold: 5", "failure_threshold: 0")
    path = tmp_path / "policy.yaml"
    path.write_text(bad)
    line = bad.splitlines().index("  failure_threshold: 0") + 1
    assert main(["check-policy", str(path)]) == 2
    assert f"{path}:{line}: breaker.failure_threshold:" in capsys.readouterr().err
