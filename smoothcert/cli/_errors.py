"""The error type and exit statuses shared by the modules of the command line."""

#: Exit status of a run that failed with an error (usage errors exit with 2).
EXIT_ERROR = 1
#: Exit status of a run interrupted by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """An error reported to the user as one line, without a traceback."""
