"""A full in-flight pool is named as the pool's, however late the generator woke, where requests sent and unanswered
filled it at the end; the peak in flight counts them.

Probed (session 65, probe B, WRONG 1): --rate 400 --request-batch 16 --max-in-flight 2000 against a server answering
~100 req/s. Arrivals 3.54–8.54 s were the 2000 sent and unanswered at the end (every slot taken), every later one
never sent, Triton's queue 4.77 s a request; the answered requests (the first 3.5 s) had a send lag p99 of 136 ms,
125 ms of it the generator's, and a peak in flight of 972. The notes said "the load generator fell behind its
schedule: p99 125 ms late, its CPU … spread the load (--workers N)" for the 2583 never sent; with the default 64
slots the same run said "all 64 in-flight slots were taken". With slots to spare the generator keeps the blame.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import numpy as np

from loadtest.client_lags import peak_in_flight, peak_with_unanswered
from loadtest.load_pattern import OpenLoop
from loadtest.load_settings import LoadSettings
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import SAMPLE_COLUMNS, WINDOW_FILE, read_window
from loadtest.results import LoadResult
from loadtest.step_result import _result_of_window

START, WINDOW_S, RATE, CAPACITY = 7_000.0, 15.0, 400.0, 100.0
SLOT_ADVICE = "raise --max-in-flight or lower the rate"


def run(slots: int) -> tuple[np.ndarray, int, int]:
    """Rows (end, latency ms from the arrival, ok, send lag ms, generator lag ms, samples, in flight at arrival) of
    arrivals every 1/RATE s served first come, first served at CAPACITY req/s through `slots` in-flight slots, every
    40th sent 130 ms late by its generator; and how many were sent and unanswered at the end, and never sent."""
    waiting: deque[float] = deque()  # the ends of the requests in flight, in order: the server serves in turn
    free, rows, unanswered, unsent = 0.0, [], 0, 0
    arrivals = np.arange(0.0, WINDOW_S, 1.0 / RATE)
    woken = arrivals + np.where(np.arange(len(arrivals)) % 40 == 0, 0.13, 0.0)
    for arrival, woke in sorted(zip(arrivals, woken, strict=True), key=lambda pair: pair[1]):  # as the generator woke
        while waiting and waiting[0] <= woke:
            waiting.popleft()
        in_flight = len(waiting)
        sent = woke if in_flight < slots else waiting.popleft()  # a full pool: it waits for the next answer
        if sent >= WINDOW_S:  # no slot freed before the stop: the request it waited for stays in flight
            waiting.appendleft(sent)
            unsent += 1
            continue
        free = max(sent, free) + 1.0 / CAPACITY
        waiting.append(free)
        if free >= WINDOW_S:
            unanswered += 1
            continue
        lag, generator = (sent - arrival) * 1000.0, (woke - arrival) * 1000.0
        rows.append((START + free, (free - arrival) * 1000.0, 1.0, lag, generator, 16.0, in_flight + 1))
    return np.array(rows), unanswered, unsent


def step(slots: int) -> LoadResult:
    """An open-loop step of `run(slots)`, summarized as `loadtest.step_result` does before it counts the unanswered
    in the peak (the probe's file)."""
    rows, unanswered, unsent = run(slots)
    latency = LatencySummary.from_samples(rows[:, 1])
    result = LoadResult("digits_int8", "127.0.0.1:1", "open", 1, WINDOW_S, len(rows), 0, 0.0, 0.0, latency)
    result.rate_rps, result.arrivals, result.offered_requests = RATE, "constant", int(RATE * WINDOW_S)
    result.cut_at_end, result.unsent, result.max_in_flight = unanswered, unsent, slots
    result.send_lag_p50_ms, result.send_lag_p99_ms = (float(np.percentile(rows[:, 3], q)) for q in (50, 99))
    result.generator_lag_p99_ms = float(np.percentile(rows[:, 4], 99))
    result.peak_in_flight = int(rows[:, 6].max())
    return result


def test_the_probes_full_pool_is_the_pools_not_the_generators() -> None:
    result = step(2000)
    assert result.cut_at_end == 2000 and result.unsent > 1000  # every slot taken at the end, arrivals waiting
    assert (result.peak_in_flight or 0) < 2000  # the answered requests alone never saw it full
    assert (result.generator_lag_p99_ms or 0.0) >= (result.send_lag_p99_ms or 0.0) / 2 > 10.0  # the old blame's case
    note = result.send_lag_note() or ""
    assert "all 2000 in-flight slots were taken, so requests waited for a free in-flight slot" in note, note
    assert note.endswith(SLOT_ADVICE) and "fell behind its schedule" not in note and "--workers" not in note
    unsent = result.unsent_note() or ""
    assert f"{result.unsent} never sent: all 2000 in-flight slots were taken (--max-in-flight 2000)" in unsent, unsent
    assert "fell behind" not in unsent and "its CPU" not in unsent


def test_the_peak_counts_the_requests_unanswered_at_the_end() -> None:
    result = step(2000)
    assert peak_in_flight(result._client_lags()[0]) == 2001  # an arrival found every slot taken
    assert peak_with_unanswered(972, 2000, 2000, 2583) == 2001
    assert peak_with_unanswered(972, 2000, 2000, 0) == 2000  # full, none waiting
    assert peak_with_unanswered(972, 2000, 1500, 10) == 1500  # room left: the unanswered are the peak
    assert peak_with_unanswered(972, 2000, 30, 0) == 972
    assert peak_with_unanswered(10, 64, 128, 5, processes=2) == 65  # every worker's pool full
    assert peak_with_unanswered(None, None, 5, 0) is None  # no limit recorded: nothing to read


def test_with_slots_to_spare_the_generator_keeps_the_blame() -> None:
    result = step(8000)
    assert result.unsent <= 1 and result.cut_at_end < 8000  # the pool had room (one arrival woke after the stop)
    note = result.send_lag_note() or ""
    assert "the load generator fell behind its schedule" in note, note


def test_slots_a_late_generator_could_fill_with_arrivals_it_owed_keep_its_blame() -> None:
    """Arrivals due in the last quarter second and unsent count as on their way: a generator 309 ms late at 420 req/s
    (a Pareto trace, session 29) owed ~130, more than 64 slots, so a full count at the end shows no full pool."""
    result = step(2000)
    result.rate_rps, result.max_in_flight, result.cut_at_end, result.unsent = 420.0, 64, 64, 251
    result.send_lag_p99_ms, result.generator_lag_p99_ms, result.peak_in_flight = 574.3, 309.5, 10
    assert "the load generator fell behind its schedule (p99 310 ms late, its CPU)" in (result.send_lag_note() or "")
    result.generator_lag_p99_ms = 2.0  # on time: the count is of requests sent, the slots all taken
    assert "all 64 in-flight slots were taken" in (result.send_lag_note() or "")


def test_the_steps_recorded_peak_counts_its_unanswered(tmp_path: Path) -> None:
    """A step's `peak_in_flight` (its JSON) from what its Locust process recorded: 3 answered with 1 in flight at
    their arrival, 4 sent and unanswered at the end filling --max-in-flight 4, and 200 arrivals never sent."""
    record = tmp_path / "raw"
    record.mkdir()
    (record / WINDOW_FILE).write_text(json.dumps({"start": 100.0, "end": 110.0}))
    answered = np.zeros((3, SAMPLE_COLUMNS))
    answered[:, 0], answered[:, 1], answered[:, 2], answered[:, 6] = [101.0, 102.0, 103.0], 500.0, 1.0, 1.0
    np.save(record / "latencies-1.npy", answered)
    sent = np.array([104.0, 104.5, 105.0, 105.5])
    np.save(
        record / "unanswered-1.npy", np.column_stack([np.full(4, 110.1), (110.1 - sent) * 1000.0, np.ones(4), sent])
    )
    np.save(record / "unsent-1.npy", np.column_stack([np.linspace(106.0, 109.0, 200), np.ones(200)]))
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 8), dtype=np.float32))
    step = OpenLoop(40.0)
    settings = LoadSettings("127.0.0.1:1", "m", data, step, duration_s=10.0, max_in_flight=4)
    result = _result_of_window(settings, step, record, read_window(record), tmp_path / "locust" / "none")
    assert result.unsent == 200 and result.peak_in_flight == 5  # an arrival found the 4 slots taken
    assert "never sent: all 4 in-flight slots were taken (--max-in-flight 4)" in (result.unsent_note() or "")
