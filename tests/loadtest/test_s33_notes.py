"""Notes that named the wrong cause, or none, probed on an MLP under `quantserve serve` (session 33).

`loadtest --trace agg3.csv` (20, 0, 1500, 20, 20 arrivals in its five seconds) was told the server "stalled" in 1-2 s,
where the trace offered none, and its send-lag note blamed that stall; `--rate 0.1 --arrivals poisson --duration 12s`
drew no arrival and read as a server fault; two answered requests' interpolated p99 was called "their slowest one";
and ONNX Runtime's cause was cut off the failure note.
"""

from __future__ import annotations

import numpy as np

from loadtest.empty_window import nothing_measured
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.send_lag import SLOTS, STALLED, ClientLags, send_lag_cause, send_lag_note, stalled_slots
from loadtest.timeline import Stall, peak_offered_rps, per_second, stall
from loadtest.window_notes import errors_clause, tail_note

START = 1_800_000_000.0
ORT_ERROR = (
    'TritonRequestFailed("[StatusCode.INTERNAL] inference failed: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Non-zero '
    "status code returned while running Gather node. Name:'Gather_0' Status Message: indices element out of data "
    'bounds, idx=1000 must be within the inclusive range [-100,99]")'
)


def served(arrivals: list[float], capacity: float, stop: tuple[float, float] | None = None) -> np.ndarray:
    """Rows of (end wall time, latency ms from the arrival, ok) of `arrivals` (s into the window) served first come,
    first served at `capacity` req/s by a server that answers nothing from `stop[0]` to `stop[1]`."""
    free, rows = 0.0, []
    for arrival in sorted(arrivals):
        begin = max(arrival, free)
        if stop and stop[0] <= begin < stop[1]:
            begin = stop[1]
        free = begin + 1.0 / capacity
        rows.append((START + free, (free - arrival) * 1000.0, 1.0))
    return np.array(rows)


def trace(counts: list[int]) -> list[float]:
    """Arrivals spread evenly over each second, `counts[i]` in the i-th, none on its edges."""
    return [t + (k + 0.5) / n for t, n in enumerate(counts) for k in range(n)]


def open_result(samples: np.ndarray, window_s: float, offered: int) -> LoadResult:
    """An open-loop trace step of `samples`, its 64 in-flight slots all taken and its requests 1100 ms late at p99."""
    latency = LatencySummary.from_samples(samples[:, 1])
    result = LoadResult("mlp", "127.0.0.1:1", "open", 1, window_s, len(samples), 0, len(samples) / window_s, 0, latency)
    result.rate_rps, result.arrivals, result.offered_requests = offered / window_s, "trace", offered
    result.timeline = per_second(samples, START, START + window_s)
    result.send_lag_p50_ms, result.send_lag_p99_ms, result.generator_lag_p99_ms = 200.0, 1100.0, 2.0
    result.max_in_flight, result.peak_in_flight = 64, 65
    return result


def test_a_traces_idle_gap_before_a_burst_is_no_stall() -> None:
    samples = served(trace([20, 0, 1500, 20, 20]), capacity=706.0)
    result = open_result(samples, 5.0, len(samples))
    assert [second.arrived for second in result.timeline] == [20, 0, 1500, 20, 20]
    assert stall("open", result.latency, result.timeline) is None
    notes = " ".join(result.notes())
    assert "stalled" not in notes and "no request was answered" not in notes, notes
    assert "a burst offered 1500 req/s in its busiest second (against 312 req/s mean)" in notes, notes


def test_a_server_stopped_under_steady_arrivals_still_stalls() -> None:
    samples = served(trace([100] * 10), capacity=700.0, stop=(3.0, 6.0))
    result = open_result(samples, 10.0, len(samples))
    found = stall("open", result.latency, result.timeline)
    assert found is not None and (found.quiet_from_s, found.quiet_to_s) == (3.0, 6.0)
    assert found.peak_offered_rps == 100.0


def test_a_burst_above_what_the_server_answers_is_not_blamed_on_a_stall() -> None:
    lags = ClientLags(1100.0, 200.0, 2.0, 65, 64)
    cause = send_lag_cause(lags, 50.0)
    assert cause is not None and cause.part == SLOTS
    steady = Stall(1500.0, 5.0, 1.0, 2.0, answered_after_rps=706.0, peak_offered_rps=320.0)
    burst = Stall(1500.0, 5.0, 1.0, 2.0, answered_after_rps=706.0, peak_offered_rps=1500.0)
    assert stalled_slots(cause, lags, steady, 312.0).part == STALLED
    assert stalled_slots(cause, lags, burst, 312.0).part == SLOTS  # the 312 req/s mean hid the 1500 req/s second


def test_the_full_slots_of_a_burst_are_named_as_its_backlog() -> None:
    samples = served(trace([20, 0, 1500, 20, 20]), capacity=706.0)
    peak = peak_offered_rps(per_second(samples, START, START + 5.0))
    assert peak == 1500.0
    lags = ClientLags(419.0, 173.4, 112.0, 65, 64)
    note = send_lag_note("mlp", lags, 50.0, offered_rps=312.0, peak_offered_rps=peak) or ""
    assert "a burst offered 1500 req/s in its busiest second (against 312 req/s mean), more than the server" in note
    steady = send_lag_note("mlp", lags, 50.0, offered_rps=312.0, peak_offered_rps=340.0) or ""
    assert "the server answered slower than the offered rate" in steady and "burst" not in steady


def test_a_schedule_that_offered_no_arrival_says_so() -> None:
    empty = LoadResult("mlp", "127.0.0.1:1", "open", 1, 12.0, 0, 0, 0.0, 0, LatencySummary.from_samples([]))
    empty.rate_rps, empty.arrivals, empty.offered_requests = 0.1, "poisson", 0
    assert nothing_measured(empty) == (
        "the schedule offered no arrival in its 12.0 s window (1.2 expected at its rate), so no request was sent"
    )
    empty.offered_requests = 3  # sent, and none came back: the server's part
    assert nothing_measured(empty) == "no request completed in its 12.0 s window"


def test_a_p99_between_two_requests_is_said_to_be_interpolated() -> None:
    note = tail_note("mlp @ 1 req/s constant", 2) or ""
    assert "interpolated between their two slowest" in note and "their slowest one" not in note
    assert "it is that request's latency" in (tail_note("mlp @ 1 req/s constant", 1) or "")


def test_a_long_error_keeps_its_cause() -> None:
    clause = errors_clause({ORT_ERROR: 159}, 159)
    assert "idx=1000 must be within the inclusive range [-100,99]" in clause, clause
    assert clause.startswith('; 159 × TritonRequestFailed("[StatusCode.INTERNAL] inference failed')
    assert len(clause) < len(ORT_ERROR)
