"""A stall's quiet seconds are those in which no request was answered: one the client gave up on at its own
deadline (--request-timeout) had no answer, and ends no stall.

Probed (session 54): an open loop at 50 req/s with a 3 s deadline, tritonserver SIGSTOPped 8 s mid-window, said "no
request finished for 2 whole seconds (7–9 s)" beside "the longest 8.7 s without a success (6.38–15.12 s)": the
deadline failures ending in 9–15 s counted as finished, though the timeline had no success from 7 to 15 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import DEADLINE_COLUMN
from loadtest.results import LoadResult
from loadtest.timeline import SecondStats, outages, per_second, quiet_seconds
from loadtest.window_notes import stall_note

START = 5_000.0
STOP, BACK, DEADLINE_S = 6.38, 15.0, 3.0


def stopped_server(window_s: float = 20.0) -> np.ndarray:
    """Rows (end, latency ms, ok, …, deadline) of arrivals every 20 ms, answered in 10 ms (100 req/s) save while the
    server was stopped (STOP–BACK s): those waiting DEADLINE_S fail at the client's deadline, the rest are answered
    from BACK on, the backlog first."""
    rows, free = [], 0.0
    for arrival in np.arange(0.0, window_s, 0.02):
        row = np.zeros(DEADLINE_COLUMN + 1)
        begin = max(arrival, free, BACK if STOP <= max(arrival, free) < BACK else 0.0)
        if begin - arrival >= DEADLINE_S:  # the client gives up at its deadline, no answer
            row[:3], row[DEADLINE_COLUMN] = (START + arrival + DEADLINE_S, DEADLINE_S * 1000.0, 0.0), 1.0
        else:
            free = begin + 0.01
            if free >= window_s:
                break
            row[:3] = (START + free, (free - arrival) * 1000.0, 1.0)
        rows.append(row)
    return np.array(rows)


def test_deadline_failures_end_no_stall() -> None:
    samples = stopped_server()
    timeline = per_second(samples, START, START + 20.0)
    assert [s.ok for s in timeline[7:15]] == [0] * 8 and all(s.gave_up == s.failed for s in timeline)
    assert quiet_seconds(timeline) == (7.0, 15.0)
    (outage,) = outages(samples, START, START + 20.0)
    assert outage.start_s < 7.0 and outage.end_s >= 15.0  # the outage note and the stall note now agree
    ok = samples[:, 2] > 0.5
    latency = LatencySummary.from_samples(samples[ok, 1])
    note = stall_note("digits_fp32 @ 50 req/s constant", "open", latency, timeline) or ""
    assert sum(s.gave_up or 0 for s in timeline[7:15]) == 281  # of 282: the last one ended in second 15
    assert note.startswith(
        "digits_fp32 @ 50 req/s constant: no request was answered for 8 whole seconds (7–15 s into the window; "
        "281 failed meanwhile at the client's deadline) while requests kept arriving"
    ), note


def test_the_count_of_deadline_failures_is_kept_with_the_timeline(tmp_path: Path) -> None:
    samples = stopped_server()
    ok = samples[:, 2] > 0.5
    latency = LatencySummary.from_samples(samples[ok, 1])
    step = LoadResult("m", "h:1", "open", 1, 20.0, len(samples), int((~ok).sum()), 0.0, 0.0, latency)
    step.rate_rps, step.arrivals = 50.0, "constant"
    step.timeline = per_second(samples, START, START + 20.0)
    LoadRun("m", [step]).save(tmp_path)
    (loaded,) = LoadRun.load(tmp_path / "load-m-open.json").results
    assert [s.gave_up for s in loaded.timeline] == [s.gave_up for s in step.timeline]
    assert any("no request was answered for 8 whole seconds (7–15 s" in n for n in loaded.notes())


def test_a_timeline_from_before_keeps_its_failures_as_answers() -> None:
    """A record without the deadline column (or an older file's seconds): every failure counts as an answer."""
    old = [SecondStats(float(t), 1.0, 0 if 3 <= t < 6 else 5, 2 if t == 4 else 0, 5.0, 6.0, 5) for t in range(10)]
    assert quiet_seconds(old) == (3.0, 4.0)
