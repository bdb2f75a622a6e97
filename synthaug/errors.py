"""Errors the CLI maps to exit codes."""


class BadInput(Exception):
    """Bad data, config or destination: exit code 2, nothing written at the destination.

    The message is one line that names the file, column or config key and says what to do.
    """


class GateFailed(Exception):
    """A validation gate failed: exit code 1, shards quarantined."""
