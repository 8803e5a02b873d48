"""Exit codes of every `cascade` command, in one place (scripts and runbooks depend on them)."""

EXIT_OK = 0
EXIT_FAILED = 1  # anything else: `cascade run` crashed on a bug, or a second SIGTERM cut its shutdown short
EXIT_USAGE = 2  # bad arguments or input: fix the command line or the file
EXIT_UNAVAILABLE = 3  # a backend did not answer: worth retrying
