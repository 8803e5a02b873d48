-- Generated from adapters/bigquery_schema.py (python -m adapters.bigquery_schema ops/sql);
-- tests/unit/test_bigquery_schema.py fails when the two differ. ${project} and ${dataset} are
-- placeholders (Terraform templatefile syntax).
CREATE TABLE IF NOT EXISTS `${project}.${dataset}.slo_log` (
  `insert_id` STRING NOT NULL OPTIONS(description="sha256 of the audit row's canonical JSON (dedupe key)"),
  `at` TIMESTAMP NOT NULL OPTIONS(description="when the router recorded the row (UTC)"),
  `game_date` DATE NOT NULL,
  `mode` STRING,
  `outcome` STRING NOT NULL OPTIONS(description="complete | failed"),
  `first_input_at` TIMESTAMP OPTIONS(description="the date's first input; null if none arrived"),
  `ended_at` TIMESTAMP OPTIONS(description="the last transition triggered, or one failed"),
  `end_to_end_s` FLOAT64 OPTIONS(description="ended_at - first_input_at; null unless complete"),
  `completeness` FLOAT64 OPTIONS(description="the lowest completeness at any of the date's triggers"),
  `quality` FLOAT64 OPTIONS(description="the lowest quality score at any of the date's triggers"),
  `triggered` INT64 OPTIONS(description="transitions triggered"),
  `by_cascade` INT64 OPTIONS(description="triggers by cascade"),
  `by_fallback` INT64 OPTIONS(description="triggers by fallback"),
  `by_self_heal` INT64 OPTIONS(description="triggers by self_heal"),
  `by_manual` INT64 OPTIONS(description="triggers by manual"),
  `results` ARRAY<STRUCT<slo STRING, target FLOAT64, actual FLOAT64, met BOOL>> OPTIONS(description="each objective: its target, the actual value (null: not measured) and whether met")
)
PARTITION BY `game_date`
CLUSTER BY `mode`, `outcome`
OPTIONS(
  partition_expiration_days=365,
  description="One row per game date when it ends: its SLO outcome, actuals, triggers per source, results."
);
