"""Locust's failure table as a `quantserve tune` trial reads it: the commonest failure, unwrapped from its
exception's repr and grouped as the load test's failure note groups it, and how many of a window's failures it was
(`tune_trials.trial_figures` keeps both in the trial)."""

from __future__ import annotations

import re
from collections.abc import Mapping

WRAPPED = re.compile(r"^\w+\((['\"])(.*)\1\)$", re.DOTALL)  # Locust's repr of a failure: Name("message")


def window_count(errors: Mapping[str, int], count: int, failed: int) -> int:
    """How many of the window's `failed` requests failed with the commonest error, Locust counting `count` of them
    over its whole run (spawn and warm-up too: 100 where the window failed 75). Where its table holds one error
    (messages differing only in their numbers are one), every failure in the window was that one: `failed`; else
    at most `failed` (the per-request records do not keep the message)."""
    return failed if len(_error_groups(errors)) == 1 else min(count, failed)


def commonest_error(errors: Mapping[str, int]) -> tuple[str, int]:
    """Locust's commonest failure, unwrapped from its exception's repr, and how often it came, messages that differ
    only in their numbers counted as one (`loadtest.window_notes.error_groups`, as the load test's failure note
    counts them): ORT names each out-of-range index (`idx=11910`), so one cause split into 33 messages."""
    groups = _error_groups(errors)
    if not groups:
        return "", 0
    count, message, _ = groups[0]
    return message, count


def _error_groups(errors: Mapping[str, int]) -> list[tuple[int, str, int]]:
    """Locust's failures unwrapped from their exceptions' reprs, grouped (`loadtest.window_notes.error_groups`)."""
    from loadtest.window_notes import error_groups

    unwrapped: dict[str, int] = {}
    for raw, count in errors.items():
        match = WRAPPED.match(raw)
        message = match.group(2) if match else raw
        unwrapped[message] = unwrapped.get(message, 0) + count
    return error_groups(unwrapped) if unwrapped else []
