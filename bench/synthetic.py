"""A deterministic synthetic recording: N consecutive game dates, each one night of the real cascade.

Every game date D gets the overnight run that `examples/overnight_full_cascade.jsonl` shows: on D+1 between
06:00Z and 09:00Z the five phase-2 processors report (under their various published spellings), then the
five of phase 3, the five of phase 4 and the prediction coordinator. Consecutive dates therefore live in
consecutive nights, so sorting all deliveries by `at` interleaves them the way a long-running daemon sees
them. On top of the clean cascade, at the rates below:

- redeliveries: the same message (same message_id) delivered again seconds to minutes later;
- out-of-order deliveries: a message delivered minutes after its own timestamp, behind later reports;
- broken dates: one critical processor never reports, so the fallback and self-heal deadlines fire and the
  transition fails; the phases after it never run (nothing triggered them);
- malformed messages: extra deliveries that must be dead-lettered (truncated JSON, a non-object, a game_date
  with a time part, a phase the topic does not accept, an unknown status, an unknown topic).

Each date draws from its own `random.Random` seeded by (seed, date), so a log of 1,000 dates is a prefix of
the log of 10,000 dates with the same seed and start.

    python -m bench.synthetic 10000 .venv/synthetic-10000.jsonl [--seed 7] [--start 2000-01-01]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from ops.replay import RecordedDelivery

DEFAULT_SEED = 7
DEFAULT_START = date(2000, 1, 1)

REDELIVERY_RATE = 0.02  # per valid message
OUT_OF_ORDER_RATE = 0.03  # per valid message
MALFORMED_RATE = 0.005  # extra malformed deliveries per valid message
BROKEN_DATE_RATE = 0.01  # dates where one critical processor never reports

NIGHT_STARTS_AT = time(6, 0)  # UTC, on the day after the game date


@dataclass(frozen=True, slots=True)
class Producer:
    """One processor as it publishes: the spellings (name, output table) it uses, and how much it writes."""

    canonical: str
    spellings: tuple[tuple[str, str], ...]
    rows_per_game: int
    critical: bool = False
    upcoming: bool = False  # counts tomorrow's slate, not tonight's games
    fixed_rows: int | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    transition: str
    topic: str
    phase: str
    dataset: str
    opens_min: int  # minutes after NIGHT_STARTS_AT
    span_min: int
    producers: tuple[Producer, ...]


STAGES: tuple[Stage, ...] = (
    Stage(
        "phase2_to_phase3",
        "nba-phase2-raw-complete",
        "phase_2_raw",
        "nba_raw",
        2,
        48,
        (
            Producer(
                "odds_game_lines",
                (
                    ("OddsApiGameLinesBatchProcessor", "odds_api_game_lines"),
                    ("OddsApiGameLinesProcessor", "odds_api_game_lines"),
                    ("OddsGameLinesProcessor", "odds_game_lines"),
                ),
                8,
                critical=True,
            ),
            Producer(
                "nbac_gamebook",
                (
                    ("NbacGamebookProcessor", "nbac_gamebook_player_stats"),
                    ("NbacGamebookPlayerStatsProcessor", "nbac_gamebook_player_stats"),
                ),
                26,
                critical=True,
            ),
            Producer(
                "nbac_boxscores",
                (
                    ("NbacPlayerBoxscoreProcessor", "nbac_player_boxscores"),
                    ("NbacTeamBoxscoreProcessor", "nbac_team_boxscore"),
                ),
                25,
                critical=True,
            ),
            Producer("bigdataball_pbp", (("BigDataBallPbpProcessor", "bigdataball_play_by_play"),), 465),
            Producer(
                "odds_player_props",
                (
                    ("OddsApiPropsBatchProcessor", "odds_api_player_points_props"),
                    ("OddsApiPropsProcessor", "odds_api_player_points_props"),
                ),
                128,
            ),
        ),
    ),
    Stage(
        "phase3_to_phase4",
        "nba-phase3-analytics-complete",
        "phase_3_analytics",
        "nba_analytics",
        60,
        14,
        (
            Producer(
                "player_game_summary",
                (("PlayerGameSummaryProcessor", "player_game_summary"),),
                22,
                critical=True,
            ),
            Producer(
                "upcoming_player_game_context",
                (
                    ("UpcomingPlayerGameContextProcessor", "upcoming_player_game_context"),
                    ("AsyncUpcomingPlayerGameContextProcessor", "upcoming_player_game_context"),
                ),
                23,
                critical=True,
                upcoming=True,
            ),
            Producer(
                "team_defense_game_summary",
                (("TeamDefenseGameSummaryProcessor", "team_defense_game_summary"),),
                2,
            ),
            Producer(
                "team_offense_game_summary",
                (("TeamOffenseGameSummaryProcessor", "team_offense_game_summary"),),
                2,
            ),
            Producer(
                "upcoming_team_game_context",
                (("UpcomingTeamGameContextProcessor", "upcoming_team_game_context"),),
                2,
                upcoming=True,
            ),
        ),
    ),
    Stage(
        "phase4_to_phase5",
        "nba-phase4-precompute-complete",
        "phase_4_precompute",
        "nba_precompute",
        90,
        15,
        (
            Producer(
                "player_daily_cache",
                (("PlayerDailyCacheProcessor", "player_daily_cache"),),
                19,
                critical=True,
            ),
            Producer(
                "ml_feature_store",
                (
                    ("MLFeatureStoreV2Processor", "ml_feature_store_v2"),
                    ("MLFeatureStoreProcessor", "ml_feature_store_v2"),
                ),
                19,
                critical=True,
            ),
            Producer(
                "player_composite_factors",
                (("PlayerCompositeFactorsProcessor", "player_composite_factors"),),
                19,
            ),
            Producer(
                "player_shot_zone_analysis",
                (("PlayerShotZoneAnalysisProcessor", "player_shot_zone_analysis"),),
                41,
            ),
            Producer(
                "team_defense_zone_analysis",
                (("TeamDefenseZoneAnalysisProcessor", "team_defense_zone_analysis"),),
                0,
                fixed_rows=30,
            ),
        ),
    ),
    Stage(
        "phase5_to_phase6",
        "nba-phase5-predictions-complete",
        "phase_5_predictions",
        "nba_predictions",
        120,
        20,
        (
            Producer(
                "prediction_coordinator",
                (("PredictionCoordinator", "player_prop_predictions"),),
                38,
                critical=True,
                upcoming=True,
            ),
        ),
    ),
)

MALFORMED_KINDS = (
    "truncated_json",
    "not_an_object",
    "game_date_with_time",
    "phase_not_accepted",
    "unknown_status",
    "unknown_topic",
)


@dataclass(frozen=True, slots=True)
class DatePlan:
    """What the router must make of one date: how many transitions trigger, and which one fails."""

    game_date: date
    expected_triggers: int = len(STAGES)
    broken_transition: str | None = None
    dropped_processor: str | None = None

    @property
    def complete(self) -> bool:
        return self.broken_transition is None


@dataclass
class SyntheticLog:
    records: list[dict[str, Any]]
    plans: list[DatePlan]
    redeliveries: int = 0
    out_of_order: int = 0
    malformed: int = 0


@dataclass
class _Night:
    """The deliveries of one date under construction, and what was injected into them."""

    day: date
    rng: random.Random
    records: list[dict[str, Any]] = field(default_factory=list)
    sequence: int = 0
    redeliveries: int = 0
    out_of_order: int = 0
    malformed: int = 0

    def next_id(self) -> tuple[str, int]:
        self.sequence += 2  # odd numbers are the execution ids, as in the recorded examples
        return f"{self.day:%Y%m%d}-{self.sequence:05d}", self.sequence


def generate(n_dates: int, seed: int = DEFAULT_SEED, start: date = DEFAULT_START) -> list[dict[str, Any]]:
    """The recorded deliveries of `n_dates` consecutive game dates from `start`, sorted by `at`."""
    return generate_log(n_dates, seed, start).records


def generate_log(n_dates: int, seed: int = DEFAULT_SEED, start: date = DEFAULT_START) -> SyntheticLog:
    """`generate`, plus the per-date plan a benchmark guard checks the replay against."""
    if n_dates < 1:
        raise ValueError("n_dates must be at least 1")
    log = SyntheticLog(records=[], plans=[])
    for offset in range(n_dates):
        day = start + timedelta(days=offset)
        night = _Night(day, random.Random(f"cascade-bench|{seed}|{day.isoformat()}"))
        log.plans.append(_play_night(night))
        log.records.extend(night.records)
        log.redeliveries += night.redeliveries
        log.out_of_order += night.out_of_order
        log.malformed += night.malformed
    # ISO-8601 UTC strings of one format sort chronologically; the sort is stable, so ties keep night order.
    log.records.sort(key=lambda record: record["at"])
    return log


def to_jsonl(records: Iterable[dict[str, Any]]) -> list[str]:
    """One JSON object per line (no trailing newline), as `cascade replay` reads a recording."""
    return [json.dumps(record) for record in records]


def to_deliveries(records: Iterable[dict[str, Any]]) -> list[RecordedDelivery]:
    """The records as validated `RecordedDelivery` objects, in time order (stable, like `read_recording`)."""
    return sorted((RecordedDelivery.model_validate(record) for record in records), key=lambda d: d.at)


# --- one night ------------------------------------------------------------------------------------------


def _play_night(night: _Night) -> DatePlan:
    rng = night.rng
    games = rng.randint(2, 15)
    upcoming_games = rng.randint(2, 15)
    broken_at: int | None = rng.randrange(len(STAGES)) if rng.random() < BROKEN_DATE_RATE else None
    dropped: str | None = None
    night_start = datetime.combine(night.day + timedelta(days=1), NIGHT_STARTS_AT, tzinfo=UTC)
    for index, stage in enumerate(STAGES):
        producers = list(stage.producers)
        if index == broken_at:
            missing = rng.choice([p for p in producers if p.critical])
            producers.remove(missing)
            dropped = missing.canonical
        for finished_at, producer in _finish_times(rng, night_start, stage, producers):
            _report(night, stage, producer, finished_at, upcoming_games if producer.upcoming else games)
        if index == broken_at:
            break  # nothing triggered the later phases, so they never run
    if broken_at is None:
        return DatePlan(night.day)
    return DatePlan(night.day, broken_at, STAGES[broken_at].transition, dropped)


def _finish_times(
    rng: random.Random, night_start: datetime, stage: Stage, producers: Sequence[Producer]
) -> list[tuple[datetime, Producer]]:
    first_s = stage.opens_min * 60
    last_s = first_s + stage.span_min * 60
    times = [(night_start + timedelta(seconds=rng.randint(first_s, last_s)), p) for p in producers]
    return sorted(times, key=lambda pair: pair[0])


def _report(night: _Night, stage: Stage, producer: Producer, finished_at: datetime, games: int) -> None:
    rng = night.rng
    message_id, sequence = night.next_id()
    name, table = rng.choice(producer.spellings)
    body = _body(night, stage, producer, name, table, sequence, finished_at, games)
    delay_s = rng.randint(1, 4)
    if rng.random() < OUT_OF_ORDER_RATE:
        # Pub/Sub held this one back: it lands behind reports that finished after it.
        delay_s = rng.randint(150, 480)
        night.out_of_order += 1
    record = {
        "at": _iso(finished_at + timedelta(seconds=delay_s)),
        "topic": stage.topic,
        "message_id": message_id,
        "attributes": {"processor": name},
        "data": body,
    }
    night.records.append(record)
    if rng.random() < REDELIVERY_RATE:
        # The ack was lost: the very same message (same message_id, same body) comes back.
        again = finished_at + timedelta(seconds=delay_s + rng.randint(10, 600))
        night.records.append({**record, "at": _iso(again)})
        night.redeliveries += 1
    if rng.random() < MALFORMED_RATE:
        _malformed(night, stage, body, finished_at + timedelta(seconds=delay_s + rng.randint(1, 60)))


def _body(
    night: _Night,
    stage: Stage,
    producer: Producer,
    name: str,
    table: str,
    sequence: int,
    finished_at: datetime,
    games: int,
) -> dict[str, Any]:
    rng = night.rng
    rows = producer.fixed_rows or max(1, games * producer.rows_per_game + rng.randint(-games, games))
    metadata: dict[str, Any] = {"games_expected": games, "games_processed": games}
    if producer.canonical == "prediction_coordinator":
        metadata = {"completion_pct": 100.0, "completed_predictions": rows, "expected_predictions": rows}
    return {
        "processor_name": name,
        "phase": stage.phase,
        "execution_id": f"{name[:6].lower()}-{sequence - 1:04d}",
        "correlation_id": f"c-{night.day:%Y%m%d}-overnight",
        "game_date": night.day.isoformat(),
        "output_table": f"{stage.dataset}.{table}",
        "output_dataset": stage.dataset,
        "status": "success",
        "record_count": rows,
        "records_failed": 0,
        "timestamp": _iso(finished_at - timedelta(seconds=2)),
        "duration_seconds": round(rng.uniform(20.0, 300.0), 1),
        "trigger_source": "pubsub",
        "metadata": metadata,
    }


def _malformed(night: _Night, stage: Stage, body: dict[str, Any], at: datetime) -> None:
    rng = night.rng
    kind = rng.choice(MALFORMED_KINDS)
    topic = stage.topic
    data: dict[str, Any] | str
    if kind == "truncated_json":
        text = json.dumps(body)
        data = text[: rng.randint(20, len(text) - 10)]
    elif kind == "not_an_object":
        data = json.dumps([body["processor_name"], body["game_date"]])
    elif kind == "game_date_with_time":
        data = {**body, "game_date": f"{body['game_date']}T00:00:00"}
    elif kind == "phase_not_accepted":
        other = next(s for s in STAGES if s.phase != stage.phase)
        data = {**body, "phase": other.phase}
    elif kind == "unknown_status":
        data = {**body, "status": "done"}
    else:
        topic = stage.topic.replace("-complete", "-completed")
        data = body
    night.malformed += 1
    night.records.append(
        {
            "at": _iso(at),
            "topic": topic,
            "message_id": f"{night.day:%Y%m%d}-bad-{night.malformed:02d}",
            "attributes": {"processor": body["processor_name"]},
            "data": data,
        }
    )


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- command line ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.synthetic", description="Write a synthetic recording of N game dates."
    )
    parser.add_argument("n_dates", type=int, help="number of consecutive game dates")
    parser.add_argument("out", type=Path, help="where to write the JSONL recording")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--start", type=date.fromisoformat, default=DEFAULT_START, help="first game date")
    args = parser.parse_args(argv)
    log = generate_log(args.n_dates, args.seed, args.start)
    with args.out.open("w", encoding="utf-8") as out:
        for line in to_jsonl(log.records):
            out.write(line + "\n")
    broken = sum(1 for plan in log.plans if not plan.complete)
    print(
        f"{args.out}: {len(log.records)} deliveries for {len(log.plans)} game dates "
        f"({log.plans[0].game_date} .. {log.plans[-1].game_date}); {log.redeliveries} redeliveries, "
        f"{log.out_of_order} out of order, {log.malformed} malformed, {broken} dates missing a critical input"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
