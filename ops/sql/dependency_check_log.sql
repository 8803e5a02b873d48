-- Generated from adapters/bigquery_schema.py (python -m adapters.bigquery_schema ops/sql);
-- tests/unit/test_bigquery_schema.py fails when the two differ. ${project} and ${dataset} are
-- placeholders (Terraform templatefile syntax).
CREATE TABLE IF NOT EXISTS `${project}.${dataset}.dependency_check_log` (
  `insert_id` STRING NOT NULL OPTIONS(description="sha256 of the audit row's canonical JSON (dedupe key)"),
  `at` TIMESTAMP NOT NULL OPTIONS(description="when the router recorded the row (UTC)"),
  `game_date` DATE NOT NULL,
  `transition` STRING NOT NULL,
  `mode` STRING,
  `cause` STRING OPTIONS(description="event | timer | operator"),
  `decision` STRING NOT NULL,
  `completeness` FLOAT64,
  `quality_score` FLOAT64,
  `missing` ARRAY<STRING>,
  `reasons` ARRAY<STRING>,
  `stale` ARRAY<STRING>,
  `coverage` ARRAY<STRUCT<processor STRING, coverage FLOAT64>> OPTIONS(description="per-processor coverage, 0..1")
)
PARTITION BY `game_date`
CLUSTER BY `transition`, `decision`
OPTIONS(
  partition_expiration_days=365,
  description="One row per dependency check: coverage, completeness, quality, decision, reasons."
);
