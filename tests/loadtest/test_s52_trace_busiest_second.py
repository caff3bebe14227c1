"""One "busiest second" in a report: the plan's and the Trace line's figure (a sliding 1 s window over the trace's
arrivals) and the send-lag note's "a burst offered … in its busiest second" (the timeline's whole-second bins) read
715/s and 662/s in one report of `--trace diurnal.csv --trace-speed 5` (session 52). The note now counts the window's
offered arrivals in a sliding second too, recorded with the step."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from loadtest.arrival_trace import ArrivalTrace
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.timeline import busiest_second_rps, peak_offered_rps, per_second

START = 1_800_000_000.0
# 100 arrivals in 0.6-1.4 s of a 3 s window: 100 in its busiest second, but 50 in each whole second
BURST = np.concatenate([np.linspace(0.6, 1.39, 100), [2.5]])


def served(arrivals: np.ndarray) -> np.ndarray:
    """Rows of (end wall time, latency ms from the arrival, ok): each answered 5 ms after it arrived."""
    return np.column_stack([START + arrivals + 0.005, np.full(len(arrivals), 5.0), np.ones(len(arrivals))])


def test_a_burst_across_a_seconds_edge_counts_whole() -> None:
    assert busiest_second_rps(START + BURST, START, START + 3.0) == 100.0
    assert peak_offered_rps(per_second(served(BURST), START, START + 3.0)) == 51.0  # the bins split it
    # the trace's own figure is the same count: a sliding second over its arrivals
    assert ArrivalTrace("burst", BURST - BURST[0], 3.0).peak_rate_rps() == 100.0
    assert busiest_second_rps(START + np.array([0.1, 0.2]), START, START + 0.5) == 4.0  # a window under 1 s: its rate


def test_the_send_lag_note_names_the_sliding_seconds_figure() -> None:
    samples = served(BURST)
    latency = LatencySummary.from_samples(samples[:, 1])
    result = LoadResult("mlp", "127.0.0.1:1", "open", 1, 3.0, len(samples), 0, len(samples) / 3.0, 0, latency)
    result.rate_rps, result.arrivals, result.offered_requests = len(samples) / 3.0, "trace", len(samples)
    result.timeline = per_second(samples, START, START + 3.0)
    result.send_lag_p50_ms, result.send_lag_p99_ms, result.generator_lag_p99_ms = 200.0, 1100.0, 2.0
    result.max_in_flight, result.peak_in_flight = 64, 65
    result.peak_offered_rps = busiest_second_rps(START + BURST, START, START + 3.0)
    note = result.send_lag_note() or ""
    assert "a burst offered 100 req/s in its busiest second (against 33.67 req/s mean)" in note, note
    assert LoadResult.from_dict(asdict(result)).peak_offered_rps == 100.0
