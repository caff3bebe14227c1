"""The project's one user-facing exception: the CLI prints its message as one line and exits non-zero."""


class QuantserveError(Exception):
    """A user error (bad input, missing file, taken port): reported as one clear line, no traceback."""

    exit_code = 2
