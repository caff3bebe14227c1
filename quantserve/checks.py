"""Checks of flag values that several commands share, each refusing a bad value in one line (`QuantserveError`).

One home, so `loadtest` (its command and `loadtest.load_settings`), `evaluate` and `infer` refuse the same value with
the same words: the seconds check was once written out in each of the four.
"""

from __future__ import annotations

import math

from quantserve.errors import QuantserveError


def positive_seconds(flag: str, seconds: float) -> float:
    """`seconds` where it is a positive, finite number (NaN and inf are no deadline); else one line naming `flag`."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise QuantserveError(f"{flag} must be a positive number of seconds, got {seconds:g}")
    return seconds
