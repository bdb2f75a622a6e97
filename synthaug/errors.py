"""The error the CLI maps to exit code 2. (A failed gate is not an error: run_pipeline returns
a RunResult whose exit_code is 1.)"""


class BadInput(Exception):
    """Bad data, config or destination: exit code 2, nothing written at the destination.

    The message is one line that names the file, column or config key and says what to do.
    """
