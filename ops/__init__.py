"""Process concerns: settings, logging, the effect runner, the CLI and the composition root."""
