"""`parse_policy`: the default policy parses; a broken one is rejected naming line and dotted field.

Each bad policy is the default text with one substitution. The expected line is computed from the text: the
line where the substitution starts, plus the line of `marker` inside the replacement. No magic numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ops.policy_file import default_policy_text
from policies.loader import PolicyError, Problem, parse_policy
from policies.model import Mode, Policy

DEFAULT_TEXT, _ = default_policy_text()


@dataclass(frozen=True)
class Edit:
    old: str
    new: str
    marker: str  # a substring of `new` on the line the error must name

    def text(self) -> str:
        assert DEFAULT_TEXT.count(self.old) == 1, f"substitution target is not unique: {self.old!r}"
        return DEFAULT_TEXT.replace(self.old, self.new)

    def line(self) -> int:
        """1-based line of `marker` in the edited text."""
        start = DEFAULT_TEXT.index(self.old)
        assert self.marker in self.new, f"marker {self.marker!r} is not in the replacement"
        return DEFAULT_TEXT[:start].count("\n") + self.new[: self.new.index(self.marker)].count("\n") + 1


def _rejection(text: str, source: str = "<policy>") -> list[Problem]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source)
    assert caught.value.source == source
    return caught.value.problems


# -- the default policy ----------------------------------------------------------------------------------


def test_the_default_policy_text_parses() -> None:
    policy = parse_policy(DEFAULT_TEXT, "nba.yaml")

    assert isinstance(policy, Policy)
    assert set(policy.modes) == set(Mode)
    assert set(policy.transitions) == {
        "phase2_to_phase3",
        "phase3_to_phase4",
        "phase4_to_phase5",
        "phase5_to_phase6",
    }
    assert policy.transitions["phase3_to_phase4"].next == "phase4_to_phase5"
    assert policy.transitions["phase3_to_phase4"].expectation(Mode.SAME_DAY).critical == (
        "upcoming_player_game_context",
    )


def test_the_yaml_anchors_in_the_default_policy_share_one_expectation() -> None:
    phase2 = parse_policy(DEFAULT_TEXT).transitions["phase2_to_phase3"]

    assert phase2.expectation(Mode.TOMORROW) == phase2.expectation(Mode.SAME_DAY)
    assert phase2.expectation(Mode.MANUAL) == phase2.expectation(Mode.OVERNIGHT)  # both `default`


# -- invalid files: line and field ------------------------------------------------------------------------

LOCATED_CASES = [
    pytest.param(
        Edit("    quality: 0.90\n", "    quality: 1.9\n", "quality: 1.9"),
        "modes.same_day.quality",
        "less than or equal to 1",
        id="value-out-of-range",
    ),
    pytest.param(
        Edit("    cascade: false", "    cascade: false\n    cascde: true", "cascde"),
        "modes.backfill.cascde",
        "Extra inputs are not permitted",
        id="unknown-key-in-a-mode",
    ),
    pytest.param(
        Edit(
            "    deadline_offset_s: 1800\n",
            "    deadline_offset_s: 1800\n    deadline_ofset_s: 900\n",
            "ofset",
        ),
        "transitions.phase3_to_phase4.deadline_ofset_s",
        "Extra inputs are not permitted",
        id="unknown-key-in-a-transition",
    ),
    pytest.param(
        Edit("max_input_age_s: 43200", "max_input_age_s: -1", "-1"),
        "max_input_age_s",
        "greater than 0",
        id="negative-age",
    ),
    pytest.param(
        Edit("next: phase4_to_phase5", "next: phase4_to_phase9", "phase4_to_phase9"),
        "transitions.phase3_to_phase4.next",
        "'phase4_to_phase9' is not a transition",
        id="next-names-a-missing-transition",
    ),
    pytest.param(
        # Flow style keeps the mode key and its processor list on one line.
        Edit(
            "      default:\n        critical: [prediction_coordinator]",
            "      default: {critical: [prediction_coordinatr]}",
            "prediction_coordinatr",
        ),
        "transitions.phase5_to_phase6.expected.default",
        "undeclared processor(s) ['prediction_coordinatr']",
        id="expected-processor-not-declared",
    ),
    pytest.param(
        Edit(
            "listens_to: nba-phase4-precompute-complete",
            "listens_to: nba-phase3-analytics-complete",
            "nba-phase3-analytics-complete",
        ),
        "transitions.phase4_to_phase5.listens_to",
        "already listened to by phase3_to_phase4",
        id="two-transitions-on-one-topic",
    ),
    pytest.param(
        Edit(
            "  player_game_summary: {}\n",
            "  player_game_summary: {}\n  PlayerGameSummary: {}\n",
            "PlayerGame",
        ),
        "processors.PlayerGameSummary",
        "'PlayerGameSummary' is ambiguous: it also matches player_game_summary",
        id="two-processors-normalise-to-one-name",
    ),
    pytest.param(
        Edit(
            "  team_defense_game_summary: {}\n",
            "  team_defense_game_summary: {aliases: [PlayerGameSummaryProcessor]}\n",
            "PlayerGameSummaryProcessor",
        ),
        "processors.team_defense_game_summary",
        "'PlayerGameSummaryProcessor' is ambiguous: it also matches player_game_summary",
        id="alias-claims-another-processor",
    ),
    pytest.param(
        Edit('fallback: {day_offset: 1, at: "06:00"}', 'fallback: {day_offset: 1, at: "6:00"}', '"6:00"'),
        "modes.overnight.fallback.at",
        "must be HH:MM (24h)",
        id="deadline-not-hh-mm",
    ),
    pytest.param(
        Edit('overnight_cutover: "23:00"', 'overnight_cutover: "24:00"', "24:00"),
        "overnight_cutover",
        "must be HH:MM (24h)",
        id="cutover-hour-24",
    ),
    pytest.param(
        Edit("timezone: America/New_York", "timezone: America/Gotham", "Gotham"),
        "timezone",
        "unknown timezone 'America/Gotham'",
        id="unknown-timezone",
    ),
]


@pytest.mark.parametrize(("edit", "field", "message"), LOCATED_CASES)
def test_an_invalid_policy_names_the_line_and_field(edit: Edit, field: str, message: str) -> None:
    problems = _rejection(edit.text())

    assert [(p.line, p.field) for p in problems] == [(edit.line(), field)]
    assert message in problems[0].message


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            Edit("timezone: America/New_York", "timezone: America: New_York", "America:"), id="colon"
        ),
        pytest.param(Edit("breaker:\n", "breaker:\n\tfailure_threshold: 3\n", "\t"), id="tab-indent"),
    ],
)
def test_a_yaml_syntax_error_names_its_line(edit: Edit) -> None:
    problems = _rejection(edit.text())

    assert len(problems) == 1
    assert (problems[0].line, problems[0].field) == (edit.line(), "")
    assert problems[0].message.startswith("not valid YAML")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- version: 1\n- timezone: UTC\n", id="sequence"),
        pytest.param("just a string\n", id="scalar"),
        pytest.param("", id="empty"),
    ],
)
def test_a_policy_that_is_not_a_mapping_is_rejected_at_line_one(text: str) -> None:
    problems = _rejection(text)

    assert [(p.line, p.field) for p in problems] == [(1, "")]
    assert "mapping at the top level" in problems[0].message


OVERNIGHT_SELF_HEAL = 'self_heal: {day_offset: 1, at: "08:00"}'
SELF_HEAL_BEFORE_FALLBACK = Edit(OVERNIGHT_SELF_HEAL, 'self_heal: {day_offset: 1, at: "05:00"}', "05:00")


def test_self_heal_before_fallback_is_rejected_within_its_mode() -> None:
    problems = _rejection(SELF_HEAL_BEFORE_FALLBACK.text())

    assert len(problems) == 1
    assert problems[0].field.startswith("modes.overnight")
    assert "self_heal must come after fallback" in problems[0].message
    overnight_line = DEFAULT_TEXT.splitlines().index("  overnight:") + 1
    assert problems[0].line is not None
    assert overnight_line <= problems[0].line <= SELF_HEAL_BEFORE_FALLBACK.line()


def test_self_heal_before_fallback_names_the_self_heal_line() -> None:
    problems = _rejection(SELF_HEAL_BEFORE_FALLBACK.text())

    assert [(p.line, p.field) for p in problems] == [
        (SELF_HEAL_BEFORE_FALLBACK.line(), "modes.overnight.self_heal")
    ]


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        pytest.param(
            Edit(
                "    alert_below: null            # never alerts on completeness\n",
                '    alert_below: null\n    self_heal: {day_offset: 0, at: "09:00"}\n',
                "self_heal",
            ),
            "modes.manual.self_heal",
            "self_heal needs a fallback deadline before it",
            id="self-heal-without-fallback",
        ),
        pytest.param(
            Edit("    export_types: [predictions, best_bets, player_profiles, results]\n", "", ""),
            "transitions.phase5_to_phase6.export_types",
            "payload export needs export_types",
            id="export-payload-without-types",
        ),
    ],
)
def test_cross_field_problems_name_the_field_to_blame(edit: Edit, field: str, message: str) -> None:
    problems = _rejection(edit.text())

    assert [p.field for p in problems] == [field]
    assert message in problems[0].message
    assert problems[0].line is not None


def test_the_error_message_renders_source_line_and_field() -> None:
    edit = Edit("next: phase4_to_phase5", "next: phase4_to_phase9", "phase4_to_phase9")

    with pytest.raises(PolicyError) as caught:
        parse_policy(edit.text(), "policies/nba.yaml")

    assert str(caught.value).startswith(
        f"policies/nba.yaml:{edit.line()}: transitions.phase3_to_phase4.next: "
    )


def test_an_unknown_section_names_the_line_of_its_key() -> None:
    edit = Edit("alerts:\n  max_per_window", "alertz:\n  max_per_window", "alertz")

    problems = _rejection(edit.text())

    assert [(p.line, p.field) for p in problems] == [(edit.line(), "alertz")]


def test_a_duplicated_key_is_rejected() -> None:
    edit = Edit("max_input_age_s: 43200\n", "max_input_age_s: 43200\nmax_input_age_s: 60\n", "60")

    problems = _rejection(edit.text())

    assert [p.line for p in problems] == [edit.line()]
