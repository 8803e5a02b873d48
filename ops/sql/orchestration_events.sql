-- Generated from adapters/bigquery_schema.py (python -m adapters.bigquery_schema ops/sql);
-- tests/unit/test_bigquery_schema.py fails when the two differ. ${project} and ${dataset} are
-- placeholders (Terraform templatefile syntax).
CREATE TABLE IF NOT EXISTS `${project}.${dataset}.orchestration_events` (
  `insert_id` STRING NOT NULL OPTIONS(description="sha256 of the audit row's canonical JSON (dedupe key)"),
  `at` TIMESTAMP NOT NULL OPTIONS(description="when the router recorded the row (UTC)"),
  `kind` STRING NOT NULL OPTIONS(description="input | decision | trigger | alert | dead_letter | phase_completion | slo"),
  `game_date` DATE OPTIONS(description="null for alerts and dead letters without a date"),
  `transition` STRING,
  `mode` STRING,
  `decision` STRING OPTIONS(description="decision rows: the decision"),
  `outcome` STRING OPTIONS(description="phase_completion rows: triggered | triggered_degraded | failed; slo rows: complete | failed"),
  `trigger_id` STRING,
  `topic` STRING,
  `alert` STRING,
  `severity` STRING,
  `message_id` STRING OPTIONS(description="input and dead_letter rows: the Pub/Sub message id"),
  `payload` JSON NOT NULL OPTIONS(description="the whole audit row")
)
PARTITION BY DATE(`at`)
CLUSTER BY `kind`, `transition`, `game_date`
OPTIONS(
  partition_expiration_days=365,
  description="Every cascade audit row: inputs, decisions, triggers, alerts, dead letters, phase completions, SLO outcomes."
);
