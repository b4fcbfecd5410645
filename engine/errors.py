"""Errors the engine raises for problems a user can fix."""


class DataError(ValueError):
    """Bad or missing data; the message is one line naming the file and the fix.

    One line because the CLI prints it in place of a traceback: a user who typed a wrong
    `--data_dir` needs to read which file is wrong and what to do about it, not where in the
    loader the problem was noticed.
    """


class ConfigError(ValueError):
    """An invalid setting (a flag value, a directory); the message names it and the fix."""


class ClusterError(RuntimeError):
    """A multi-worker run lost a worker (it died, or stopped answering within the timeout);
    the message says so in one line. Training cannot continue without it: restart all."""
