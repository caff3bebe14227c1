"""Tune's prune rule: after its first window, a trial clearly worse than the best complete trial is not measured again.

Goodput is the search's objective and the rule's measure while it counts most of a trial's requests. When the best
complete trial serves under MEANINGFUL_SHARE of its requests within the SLO, its goodput counts the fast tail of the
latencies, tens to hundreds of requests a window that swing with each shift of the median: 256 closed-loop users at
~900 req/s had goodputs of 19-163/s against a 100 ms SLO, and the trial with the most throughput (1396 req/s) and the
lowest p99 (261 ms) was pruned for 19/s against the best's 103/s. There the rule compares throughput instead, which
a window measures from all its requests: in a closed loop the most throughput is the least mean latency (Little's
law), and on a trace a trial serving clearly less than the others fell behind the arrivals.

A trial's window 1 is compared with the others' window 1, in a closed loop as on a trace (`tune_trace`). Every
trial's window 1 is the first load after its model's load, 3 s in --quick, while window 2 stretches to 1000 requests
(to 9 s): the two are not the same measurement. A probe's baseline (--quick, 16 users) served 64 req/s in window 1
and 180 in window 2 (151 over both): against its two windows, a trial serving 85 in window 1, more than the baseline's
own, read as clearly worse (< 0.6 x 151). Over 29 closed-loop trials here a window 1 was 0.36-1.61x its window 2.

The fraction is PRUNE_FRACTION where this run's windows agree, and lower where they do not (`prune_fraction`): a
busy machine's window 1 ranged 0.44-1.0x its own trial's figure within one search (session 44), so a trial as good
as the best could read below 0.6x of it in window 1 alone; the rule then prunes only below the low end of that
spread over its high end, the worst two equal trials measured in this run could differ by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

PRUNE_FRACTION = 0.6  # first-window goodput below 60 % of the best: past the 0.72-1.3x spread of two windows here
MEANINGFUL_SHARE = 0.5  # the best serves at least half its requests within the SLO: its median meets it
MIN_SPREAD_TRIALS = 2  # complete trials whose window 1 and whole figures measure the spread of this run's windows
RULE = (
    f"after window 1, its goodput < {PRUNE_FRACTION:g} x the best complete trial's window-1 goodput; while that best "
    f"serves under {MEANINGFUL_SHARE:.0%} of its requests within the SLO, throughput < {PRUNE_FRACTION:g} x the most "
    "window-1 throughput instead; the fraction lowered to the low over the high end of window 1's share of its own "
    "trial's figure in this run's complete trials, where that is lower"
)


class Measured(Protocol):
    """What the rule reads of a trial (`tune_trials.Trial`, which imports this module)."""

    throughput_rps: float
    goodput_rps: float
    pruned: bool
    error: str
    first_window: dict[str, float]


@dataclass(frozen=True)
class Figures:
    """A rival's figures as the rule reads them: its whole trial's, or its first window's alone."""

    throughput_rps: float
    goodput_rps: float


def clearly_worse(first: Measured, rivals: Sequence[Measured]) -> bool:
    """Whether `first` (a trial's first window) is clearly below the best complete trial among `rivals`, each rival
    by its own first window where recorded (like for like: the module's docstring)."""
    kept = [t for t in rivals if not t.pruned and not t.error and t.throughput_rps > 0]
    complete = [window_one(t) for t in kept]
    if not complete:
        return False
    best = max(complete, key=lambda t: t.goodput_rps)
    if goodput_counts(best):
        return first.goodput_rps < prune_fraction(kept, "goodput_rps") * best.goodput_rps
    return first.throughput_rps < prune_fraction(kept, "throughput_rps") * max(t.throughput_rps for t in complete)


def prune_fraction(kept: Sequence[Measured], measure: str) -> float:
    """PRUNE_FRACTION, or lower where this run's complete trials show their window 1 spread wider: the lowest over the
    highest of window 1's `measure` as a share of its own whole trial's (module docstring). Measured from
    MIN_SPREAD_TRIALS trials with both figures; fewer keep the fixed fraction."""
    shares = [
        trial.first_window[measure] / getattr(trial, measure)
        for trial in kept
        if trial.first_window and getattr(trial, measure) > 0
    ]
    if len(shares) < MIN_SPREAD_TRIALS or max(shares) <= 0:
        return PRUNE_FRACTION
    return min(PRUNE_FRACTION, min(shares) / max(shares))


def window_one(trial: Measured) -> Figures:
    """The trial's first window's figures; its whole trial's where they were not recorded."""
    window = trial.first_window
    if not window:
        return Figures(trial.throughput_rps, trial.goodput_rps)
    return Figures(window["throughput_rps"], window["goodput_rps"])


def goodput_counts(trial: Measured | Figures) -> bool:
    """Whether the trial's goodput counts most of its requests (at least MEANINGFUL_SHARE), not a noisy tail."""
    return trial.goodput_rps > 0 and trial.goodput_rps >= MEANINGFUL_SHARE * trial.throughput_rps
