"""An open loop's stall is named as a closed loop's is, and the in-flight slots it filled are blamed on it, not on
the rate. The probe (pl8): --rate 200 --workers 2 against a server answering ~700 req/s, tritonserver SIGSTOPped 5 s:
no answer in seconds 3–7, 994 in the next, p99 4894 ms, exit 0, and the only note "the server answered slower than
the offered rate; raise --max-in-flight or lower the rate". An open loop over capacity keeps that advice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import step_lines
from loadtest.results import LoadResult
from loadtest.send_lag import ClientLags, send_lag_note
from loadtest.timeline import SecondStats, per_second, quiet_seconds, stall
from loadtest.window_notes import stall_note

START = 7_000.0
TODAYS_ADVICE = "the server answered slower than the offered rate; raise --max-in-flight or lower the rate"
STALL_ADVICE = "; find why the server stopped answering (see the stall note), then measure again for figures without it"


def open_loop(rate: float, capacity: float, window_s: float, stop: tuple[float, float] | None = None) -> np.ndarray:
    """Rows of (end wall time, latency ms, ok) of arrivals every 1/`rate` s served first come, first served at
    `capacity` req/s by a server that answers nothing from `stop[0]` to `stop[1]` (into the window); the latency
    runs from the arrival, as the open loop's does (a wait for a free in-flight slot included)."""
    free, rows = 0.0, []
    for arrival in np.arange(0.0, window_s, 1.0 / rate):
        begin = max(arrival, free)
        if stop and stop[0] <= begin < stop[1]:
            begin = stop[1]
        free = begin + 1.0 / capacity
        if free < window_s:
            rows.append((START + free, (free - arrival) * 1000.0 + 4.0, 1.0))
    return np.array(rows)


def open_result(samples: np.ndarray, rate: float, window_s: float, lag_p99_ms: float) -> LoadResult:
    """An open-loop step of `samples`, summarized as `loadtest.step_result` does, its 2 × 64 in-flight slots all taken
    and its requests `lag_p99_ms` late at p99 (the generator itself 68 ms: the probe's)."""
    latency = LatencySummary.from_samples(samples[:, 1])
    offered = int(rate * window_s)
    result = LoadResult(
        "dense", "127.0.0.1:1", "open", 2, window_s, len(samples), 0, len(samples) / window_s, 0, latency
    )
    result.rate_rps, result.arrivals, result.workers, result.offered_requests = rate, "constant", 2, offered
    result.timeline = per_second(samples, START, START + window_s)
    result.send_lag_p50_ms, result.send_lag_p99_ms, result.generator_lag_p99_ms = 1.7, lag_p99_ms, 68.0
    result.max_in_flight, result.peak_in_flight = 64, 65
    return result


def test_the_probes_stall_is_named_and_the_slots_it_filled_are_blamed_on_it(tmp_path: Path) -> None:
    """The server stopped from 2.95 s to 7.98 s: whole seconds 3–7 ended no request, then it drained the backlog at
    its 700 req/s."""
    result = open_result(open_loop(200.0, 700.0, 20.0, (2.95, 7.98)), 200.0, 20.0, 4306.0)
    stalled = stall_note(result.label, result.mode, result.latency, result.timeline)
    assert stalled == (
        "dense @ 200 req/s constant: no request was answered for 4 whole seconds (3–7 s into the window) while "
        "requests kept arriving (those answered next had waited through them); the slowest took 5035 ms (928× the "
        "p50 of 5.4 ms just before it): the server or the load generator stalled"
    )
    late = result.send_lag_note() or ""
    assert late == (
        "dense @ 200 req/s constant: requests left the client up to 4306 ms after their arrival time (p99; p50 1.7 "
        "ms), and their latencies include that wait: all 128 in-flight slots (64 in each of 2 Locust workers) were "
        "taken while the server answered nothing (3–7 s into the window), so requests waited for a free in-flight "
        "slot: the wait came from that stall, not the rate (after it the server answered up to 700 req/s, against "
        "200 req/s offered)" + STALL_ADVICE
    )
    assert "--max-in-flight" not in late and "slower than the offered rate" not in late
    assert stalled in result.notes() and late in result.notes()
    LoadRun("dense", [result]).save(tmp_path)  # the report's lines, from the saved file
    (loaded,) = LoadRun.load(tmp_path / "load-dense-open.json").results
    assert ("Stall", stalled) in step_lines([LoadRun("dense", [loaded])]) and loaded.send_lag_note() == late


def test_a_stall_over_half_a_short_window_is_named_though_it_raised_the_p50() -> None:
    """5 s stopped in a 10 s window: the backlog is half the requests, the step's p50 1466 ms; the second before the
    stall answered in 5.4 ms."""
    result = open_result(open_loop(200.0, 700.0, 10.0, (2.95, 7.98)), 200.0, 10.0, 4306.0)
    assert result.latency.p50_ms > 1000.0
    found = stall(result.mode, result.latency, result.timeline)
    assert found is not None and (found.quiet_from_s, found.quiet_to_s) == (3.0, 7.0)
    assert (result.send_lag_note() or "").endswith(STALL_ADVICE)


def test_an_overloaded_open_loop_keeps_its_note_and_advice() -> None:
    """600 req/s offered to a server answering 200 (3× its capacity), no stall: every second answers 200, the
    latencies grow; the slots were full because of the rate."""
    over = open_result(open_loop(600.0, 200.0, 10.0), 600.0, 10.0, 6000.0)
    assert stall(over.mode, over.latency, over.timeline) is None
    assert stall_note(over.label, over.mode, over.latency, over.timeline) is None
    assert (over.send_lag_note() or "").endswith(TODAYS_ADVICE)


def test_a_stall_in_an_overloaded_loop_leaves_the_rate_blamed() -> None:
    """210 req/s against 200 and a 5 s stop: the stall is named, but after it the server answered no faster than the
    rate (its backlog never cleared): the rate stays the advice. 300 against 200: its p50 just before was already
    a second, no stall, the same advice."""
    slight = open_result(open_loop(210.0, 200.0, 20.0, (2.0, 7.0)), 210.0, 20.0, 5000.0)
    assert stall_note(slight.label, slight.mode, slight.latency, slight.timeline) is not None
    assert (slight.send_lag_note() or "").endswith(TODAYS_ADVICE)
    heavy = open_result(open_loop(300.0, 200.0, 20.0, (3.0, 8.0)), 300.0, 20.0, 9000.0)
    assert stall(heavy.mode, heavy.latency, heavy.timeline) is None
    assert (heavy.send_lag_note() or "").endswith(TODAYS_ADVICE)


def test_a_wait_longer_than_the_stall_leaves_the_rate_blamed() -> None:
    """The probe's stall, but requests left the client up to 9 s late: the slots were full for more than the 4 quiet
    seconds (and the second either side) account for."""
    result = open_result(open_loop(200.0, 700.0, 20.0, (2.95, 7.98)), 200.0, 20.0, 9000.0)
    assert stall(result.mode, result.latency, result.timeline) is not None
    assert (result.send_lag_note() or "").endswith(TODAYS_ADVICE)
    found = stall(result.mode, result.latency, result.timeline)
    lags = ClientLags(4306.0, 1.7, 68.0, 65, 64)
    assert (send_lag_note("s", lags, 10.0, stalled=found) or "").endswith(TODAYS_ADVICE)  # no offered rate: unknown


def test_quiet_seconds_nothing_waited_through_are_no_stall() -> None:
    """A replayed trace's idle 4 s (no arrival in them) with one slow request elsewhere; a rate too low to answer
    every second; a slow model over capacity answering in bursts 2 s apart (quiet between, no longer than its
    requests take)."""
    burst = open_loop(200.0, 700.0, 3.0)
    idle = np.concatenate([burst, burst + np.array([8.0, 0.0, 0.0]), [[START + 2.5, 1500.0, 1.0]]])
    result = open_result(idle, 200.0, 12.0, 20.0)
    assert quiet_seconds(result.timeline) == (3.0, 8.0) and result.latency.max_ms >= 1000.0
    assert stall(result.mode, result.latency, result.timeline) is None
    sparse = open_result(open_loop(0.4, 700.0, 20.0), 0.4, 20.0, 20.0)
    assert quiet_seconds(sparse.timeline) is not None and stall(sparse.mode, sparse.latency, sparse.timeline) is None
    bursts = [burst_second(t) for t in range(10)]
    assert stall("open", LatencySummary.from_samples(np.array([3000.0] * 50 + [3900.0])), bursts) is None


def burst_second(t: int) -> SecondStats:
    """Second `t` of a slow model over capacity: 8 answers each even second, their latency growing, none between."""
    ms = 3000.0 + 100.0 * t if t % 2 == 0 else float("nan")
    return SecondStats(float(t), 1.0, 8 if t % 2 == 0 else 0, 0, ms, ms)


def test_the_never_sent_note_blames_the_stall_too() -> None:
    """pl9: 600 req/s and an 8 s stop left 2535 arrivals never sent; the send-lag note blamed the stall while the
    never-sent note advised raising --max-in-flight or lowering the rate. Both blame the stall now; an overloaded
    loop's never-sent note keeps the rate's words."""
    result = open_result(open_loop(200.0, 700.0, 20.0, (2.95, 7.98)), 200.0, 20.0, 4306.0)
    result.offered_requests, result.unsent = 4000, 35
    unsent = result.unsent_note() or ""
    assert (
        "35 never sent: all 128 in-flight slots (64 in each of 2 Locust workers) were taken while the server stalled "
        "(3–7 s into the window)"
    ) in unsent
    assert "--max-in-flight" not in unsent.split("never sent")[1]
    over = open_result(open_loop(600.0, 200.0, 10.0), 600.0, 10.0, 6000.0)
    over.unsent = 300
    assert "raise --max-in-flight to tell which, or lower the rate" in (over.unsent_note() or "")
