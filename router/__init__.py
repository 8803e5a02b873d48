"""Pure routing core: message intake and the per-(game_date, transition) state machine. No I/O."""
