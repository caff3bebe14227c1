"""The project's two exceptions: a user error (one line, exit 2) and an internal error (a bug, exit 3).

A `QuantserveError` is the user's to fix (bad input, missing file, taken port); the CLI prints its
message as one line. An `InternalError` is ours: a broken invariant that no input should reach;
the CLI says so, asks for a report, and keeps the traceback for `--debug`-style inspection.
Neither is ever raised through `assert`, which `python -O` strips.
"""


class QuantserveError(Exception):
    """A user error (bad input, missing file, taken port): reported as one clear line, no traceback."""

    exit_code = 2


class InternalError(Exception):
    """A broken invariant inside quantserve (a bug, not the user's input): exit 3 with a report hint."""

    exit_code = 3
