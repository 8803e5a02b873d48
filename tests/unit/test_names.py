"""Processor name normalisation: every published spelling resolves to the policy's canonical name."""

from __future__ import annotations

import pytest

from policies.model import Policy
from policies.names import NameIndex, lookup_keys, snake_case, table_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("PlayerGameSummaryProcessor", "player_game_summary_processor", id="class-name"),
        pytest.param("MLFeatureStoreV2Processor", "ml_feature_store_v2_processor", id="acronym-and-digit"),
        pytest.param("BigDataBallPbpProcessor", "big_data_ball_pbp_processor", id="every-capital-splits"),
        pytest.param("player_game_summary", "player_game_summary", id="snake-case-unchanged"),
        pytest.param("  player-game summary ", "player_game_summary", id="separators-and-padding"),
    ],
)
def test_snake_case(raw: str, expected: str) -> None:
    assert snake_case(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            "PlayerGameSummaryProcessor",
            ("player_game_summary_processor", "player_game_summary", "playergamesummary"),
            id="processor-suffix-stripped",
        ),
        pytest.param(
            "AsyncUpcomingPlayerGameContextProcessor",
            (
                "async_upcoming_player_game_context_processor",
                "upcoming_player_game_context",
                "upcomingplayergamecontext",
            ),
            id="async-prefix-stripped",
        ),
        pytest.param(
            "ml_feature_store_v2", ("ml_feature_store_v2", "mlfeaturestorev2"), id="no-affix-no-duplicate-key"
        ),
        pytest.param("", (), id="empty-name-has-no-keys"),
    ],
)
def test_lookup_keys_most_specific_first_without_duplicates(raw: str, expected: tuple[str, ...]) -> None:
    assert lookup_keys(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("PlayerGameSummaryProcessor", "player_game_summary", id="class-name"),
        pytest.param("player_game_summary", "player_game_summary", id="canonical"),
        pytest.param(
            "AsyncUpcomingPlayerGameContextProcessor", "upcoming_player_game_context", id="async-class"
        ),
        pytest.param("MLFeatureStoreV2Processor", "ml_feature_store", id="v2-class-via-alias"),
        pytest.param("ml_feature_store_v2", "ml_feature_store", id="v2-snake-alias"),
        pytest.param("BigDataBallPbpProcessor", "bigdataball_pbp", id="bigdataball"),
        pytest.param("PredictionCoordinator", "prediction_coordinator", id="coordinator-without-suffix"),
        pytest.param("NbacTeamBoxscoreProcessor", "nbac_boxscores", id="one-of-two-class-aliases"),
        pytest.param("OddsApiPropsBatchProcessor", "odds_player_props", id="batch-alias"),
    ],
)
def test_resolve_maps_published_names_to_canonical(policy: Policy, raw: str, expected: str) -> None:
    assert policy.names().resolve(raw) == expected


def test_bigdataball_resolves_by_spelling_alone_without_an_alias() -> None:
    # "BigDataBall" snake-cases to big_data_ball; only the underscore-free key matches bigdataball_pbp.
    assert NameIndex({"bigdataball_pbp": ()}).resolve("BigDataBallPbpProcessor") == "bigdataball_pbp"


@pytest.mark.parametrize(
    "output_table",
    [
        pytest.param("nba_raw.odds_game_lines", id="dataset-prefix"),
        pytest.param("my-project.nba_raw.odds_game_lines", id="project-and-dataset-prefix"),
    ],
)
def test_an_unknown_processor_name_falls_back_to_its_output_table(policy: Policy, output_table: str) -> None:
    assert policy.names().resolve("SomeRenamedProcessor", output_table) == "odds_game_lines"


def test_the_processor_name_wins_over_the_output_table(policy: Policy) -> None:
    assert (
        policy.names().resolve("PlayerGameSummaryProcessor", "nba_raw.odds_game_lines")
        == "player_game_summary"
    )


@pytest.mark.parametrize(
    ("raw", "output_table"),
    [
        pytest.param("TotallyUnknownProcessor", None, id="unknown-no-table"),
        pytest.param("TotallyUnknownProcessor", "nba_raw.unknown_table", id="unknown-name-and-table"),
        pytest.param("", None, id="empty"),
    ],
)
def test_an_unknown_name_resolves_to_none(policy: Policy, raw: str, output_table: str | None) -> None:
    assert policy.names().resolve(raw, output_table) is None


def test_table_name_drops_the_dataset_prefix() -> None:
    assert table_name("nba_raw.odds_game_lines") == "odds_game_lines"
    assert table_name("odds_game_lines") == "odds_game_lines"


def test_every_canonical_name_resolves_to_itself(policy: Policy) -> None:
    index = policy.names()
    assert {name: index.resolve(name) for name in policy.processors} == {
        name: name for name in policy.processors
    }
