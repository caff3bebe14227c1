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


def distinct(flag: str, names: list[str]) -> list[str]:
    """`names` where none repeats; else one line naming `flag` and what it names twice. `evaluate --models m,m`
    scored the one model twice and its report said it compared against itself "as FP32" (session 52)."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise QuantserveError(f"{flag} names {', '.join(repr(n) for n in repeated)} more than once; name each once")
    return names
