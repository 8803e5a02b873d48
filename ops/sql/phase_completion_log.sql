-- Generated from adapters/bigquery_schema.py (python -m adapters.bigquery_schema ops/sql);
-- tests/unit/test_bigquery_schema.py fails when the two differ. ${project} and ${dataset} are
-- placeholders (Terraform templatefile syntax).
CREATE TABLE IF NOT EXISTS `${project}.${dataset}.phase_completion_log` (
  `insert_id` STRING NOT NULL OPTIONS(description="sha256 of the audit row's canonical JSON (dedupe key)"),
  `at` TIMESTAMP NOT NULL OPTIONS(description="when the router recorded the row (UTC)"),
  `game_date` DATE NOT NULL,
  `transition` STRING NOT NULL,
  `mode` STRING,
  `outcome` STRING NOT NULL OPTIONS(description="triggered | triggered_degraded | failed"),
  `source` STRING,
  `trigger_id` STRING,
  `opened_at` TIMESTAMP,
  `ended_at` TIMESTAMP,
  `duration_s` FLOAT64 OPTIONS(description="ended_at - opened_at"),
  `completeness` FLOAT64,
  `processors_reported` INT64,
  `missing` ARRAY<STRING>
)
PARTITION BY `game_date`
CLUSTER BY `transition`, `outcome`
OPTIONS(
  partition_expiration_days=365,
  description="One row per (game_date, transition) when it ends: triggered, degraded or failed."
);
