"""When no trial of `quantserve tune` served a single request: stop, say what Triton said, deploy nothing.

A model that refuses what the data sends (a shape or value it cannot take) fails every request of every
configuration alike: batching and instances change nothing about it. The search had gone on through all its
trials and a confirmation run (bertfix: 80 s, every request failed) and then blamed the SLO ("a faster build, more
cores or a looser SLO would be needed", p99 nan), with Triton's error printed nowhere. So the search stops as soon as
every trial so far served nothing and requests were refused (the baseline is the first trial: its refusals stop it),
and `tune` raises `TuneFailed` with one line naming the commonest failure, after writing tune.json saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from quantserve.errors import QuantserveError

if TYPE_CHECKING:
    from quantserve.cli.tune_trials import Trial

LONGEST_ERROR = 300  # characters of the message kept in the line: Triton's own words come after its prefixes


class TuneFailed(QuantserveError):
    """No trial served a request; `result` is what tune.json holds (its `failure` the line said)."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


def all_failed(trial: Trial) -> bool:
    """Requests were answered in the trial's windows and not one succeeded: the model refuses what the data sends."""
    return trial.requests > 0 and trial.failed_requests == trial.requests


def served_nothing(trial: Trial) -> bool:
    """The trial failed (deploy, server), or every request it sent in its windows failed."""
    return bool(trial.error) or all_failed(trial)


def refused_everything(trials: Sequence[Trial]) -> bool:
    """Every trial so far served nothing, and the model was reached and refused requests: the search stops."""
    return bool(trials) and all(served_nothing(t) for t in trials) and any(all_failed(t) for t in trials)


def failure_line(trials: Sequence[Trial]) -> str:
    """One line: which trials served nothing, the commonest error Locust recorded, and what to do; "" when a trial
    served a request."""
    if not trials or not all(served_nothing(t) for t in trials):
        return ""
    refused = [t for t in trials if all_failed(t)]
    if not refused:  # every trial failed before a request could fail: deploys refused, or a server that died
        return f"every trial failed, the first with: {trials[0].error}; nothing was deployed"
    first = refused[0]
    counts = f"({first.config.label()}) failed ({first.failed_requests} of {first.requests})"
    head = (
        f"every request of the baseline {counts}"
        if first is trials[0]
        else f"no trial served a request; every request of trial {trials.index(first) + 1} {counts}"
    )
    message = first.commonest_failure or "no message recorded"
    text = message if len(message) <= LONGEST_ERROR else message[: LONGEST_ERROR - 1] + "…"
    return (
        f"{head}; the commonest error: "
        f"{text}; nothing was deployed: the model refuses the requests --data makes (`quantserve loadtest` on a "
        "deploy of the build shows the same), so fix the data or the build and tune again"
    )
