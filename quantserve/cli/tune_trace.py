"""Tune's windows over a trace (`--trace`): every trial compared on the same part of it.

Each window is a run of the trace from its start, so a window sees the trace's first seconds after the warm-up.
Where one pass is longer than the window cap (10 s in --quick, 30 s), window 1 holds only the pass's start. The probe
(session 31) replayed a 20 s pass with its burst of 300 arrivals at 15 s in --quick: every trial's window 1 saw 0-10 s
(no burst), the baseline's window 2 (30 s, stretched for requests) saw it, and trials 2 and 3 were pruned on their
window 1's goodput (1/s) against the baseline's two windows (2.3/s, the burst's requests counted). So with a trace:
window 2 lasts what the trace alone decides (not the trial's own rate: every trial the same part of it), at least
one pass where the stretch allows, and a trial's window 1 is pruned against the others' window 1 only; and where
the pass is longer than the window, tune says so.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from loadtest.trace_plan import whole_pass_seconds
from quantserve.cli import tune_trials  # read at call time: a lazy import's by-value copy kept a patched value

if TYPE_CHECKING:
    from quantserve.cli.tune_trials import TuneSettings


def trace_second_window_s(settings: TuneSettings) -> float:
    """Window 2 of every trial of a trace: long enough that both windows hold MIN_REQUESTS of the trace's arrivals
    in window 1 (the offered rate, not what the trial served), and at least one pass, whole seconds, at most
    MAX_STRETCH windows."""
    trace, warmup, window = settings.load_step().trace, settings.warmup_s, settings.window_s
    offered = trace.arrivals_within(warmup + window) - trace.arrivals_within(warmup)
    rate = offered / window if window > 0 else 0.0
    missing = tune_trials.MIN_REQUESTS - offered
    needed = math.ceil(missing / rate) if missing > 0 and rate > 0 else 0
    return float(min(max(window, needed, whole_pass_seconds(trace.period_s)), tune_trials.MAX_STRETCH * window))


def pass_note(settings: TuneSettings) -> str:
    """Where a trace's pass is longer than a window: what each window sees of it and how trials are compared;
    "" where a window holds a whole pass (or there is no trace)."""
    if settings.trace is None:
        return ""
    period, window = settings.load_step().trace.period_s, settings.window_s
    if period <= window:
        return ""
    second = trace_second_window_s(settings)
    sees = "the whole pass" if second >= period else f"its first {second:g} s"
    cap = "--quick's cap" if settings.quick else "the cap"
    return (
        f"the trace's pass ({period:g} s) is longer than a window ({window:g} s, {cap}): window 1 of every trial sees "
        f"only its first {window:g} s after the {settings.warmup_s:g} s warm-up, window 2 ({second:g} s) {sees}; "
        "a trial is pruned on window 1 against the others' window 1 only, and ranked on both windows, alike for all"
    )
