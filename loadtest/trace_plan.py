"""What a trace replay will do, said before it runs: its arrivals, its pass, the rate it offers and how long the run
lasts; and a warning where its stamps look like milliseconds read as seconds.

Measured (issue 11): a trace of 1000 arrivals stamped in relative milliseconds under a plain `timestamp` column was
read as seconds (as documented), offered 0.098 req/s and, without --duration, planned one 10224 s (2.8 h) pass with
no word; the figures of this line show such a run for what it is before anything is sent.
"""

from __future__ import annotations

import math

from loadtest.arrival_trace import MEAN_TOLERANCE, ArrivalTrace

# A pass is the sum of its gaps in floats: 300 arrivals 0.01 s apart make 3.0000000000000004 s, which `math.ceil`
# took to 4 s (1.33 passes, 400 requests instead of 300; issue 11, session 31). Stamps finer than this are noise.
PASS_RESOLUTION_DIGITS = 3  # milliseconds


def whole_pass_seconds(period_s: float) -> int:
    """One pass in whole seconds, at least 1 (a default run length, a tune window): the pass rounded to the
    millisecond first, so float error in its sum never adds a second. loadtest's and tune's one home for the rule."""
    return max(1, math.ceil(round(period_s, PASS_RESOLUTION_DIGITS)))


def plan_lines(trace: ArrivalTrace, run_s: float) -> list[str]:
    """The replay's plan in one line (`run_s`: the run's measured window), then what the window offers where that is
    not the pass's mean (part of a pass played), then the trace's unit warning and its note on row order if any."""
    passes = f"{run_s / trace.period_s:.3g}"
    idle = f" and {span(trace.idle_s)} with none, to whole seconds" if trace.idle_s else ""
    plan = (
        f"trace {trace.source}: {trace.requests} arrivals in a pass of {span(trace.recorded_period_s)}{idle}, "
        f"{figure(trace.mean_rate_rps)} req/s offered (peak {figure(trace.peak_rate_rps())} req/s over 1 s); "
        f"the run lasts {span(run_s)}, {passes} pass{'' if passes == '1' else 'es'}"
    )
    return [plan] + [line for line in (played_line(trace, run_s), trace.unit_note, trace.order_note) if line]


def figure(value: float) -> str:
    """Three significant figures as a person writes them, whole numbers from 1000 on: 1000 req/s read "1e+03" in
    `.3g`; a burst of 3001 in a second read "3000" beside the JSON's 3001. 12346, 0.0123."""
    if abs(value) >= 1000:
        return str(round(value))
    return format(float(f"{value:.3g}"), ".15g")


def played_line(trace: ArrivalTrace, run_s: float) -> str | None:
    """What the window offers where it is not the pass's mean (within MEAN_TOLERANCE; None: it is): 10 s of a 30 s
    diurnal pass offer its first third's arrivals, 184 req/s, not the pass's 283."""
    played = trace.arrivals_within(run_s)
    rate = played / run_s if run_s > 0 else 0.0
    if abs(rate - trace.mean_rate_rps) <= MEAN_TOLERANCE * trace.mean_rate_rps:
        return None
    return (
        f"the {span(run_s)} played offer {played} arrival{'' if played == 1 else 's'}, {rate:.4g} req/s, not the "
        f"pass's mean {trace.mean_rate_rps:.4g} req/s: the run replays part of a pass"
    )


def span(seconds: float) -> str:
    """Seconds as a person reads a length: `12.5 s`, `10224 s (2.8 h)`, `900 s (15 min)`."""
    if seconds >= 3600:
        return f"{seconds:.0f} s ({seconds / 3600:.1f} h)"
    if seconds >= 120:
        return f"{seconds:.0f} s ({seconds / 60:.0f} min)"
    return f"{seconds:.3g} s"
