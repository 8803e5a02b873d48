"""Pure policy: modes, dependency decisions, breaker, deadlines, alert limits. No I/O, no wall clock."""
