"""The operator's view: pure read models (day board, ETA, explanations, SLOs) built from audit rows."""
