"""A trace run shorter than a pass is labelled with what its window offered (probe round 2, fault 7).

A diurnal trace at 2880× with `--duration 10s` was headed "283.1 req/s mean" (the whole pass's) while the 10 s played
offered exactly 1859 arrivals, all answered (184.3 req/s): the table read as the server falling 35 % short.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.arrival_trace import read_trace
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.trace_plan import plan_lines

TRACE = {"file": "/data/diurnal.csv", "requests_per_pass": 8479, "pass_s": 29.954436, "mean_rate_rps": 283.063}


def _replay(window_s: float, offered: int | None) -> LoadResult:
    latency = LatencySummary.from_samples(np.full(100, 4.0))
    result = LoadResult("mlp_int8", "127.0.0.1:8001", "open", 1, window_s, 1859, 0, 184.3, 184.3, latency)
    result.rate_rps, result.arrivals, result.trace, result.offered_requests = 283.063, "trace", TRACE, offered
    return result


def test_a_window_playing_part_of_a_pass_is_labelled_with_the_rate_it_offered() -> None:
    assert _replay(10.088045120239258, 1859).label == (
        "mlp_int8 replaying diurnal.csv (184.3 req/s offered, part of a pass of 283.1 req/s mean)"
    )


def test_whole_passes_and_files_without_an_offered_count_keep_the_mean() -> None:
    assert _replay(59.908872, 16958).label == "mlp_int8 replaying diurnal.csv (283.1 req/s mean)"
    assert _replay(10.088045120239258, None).label == "mlp_int8 replaying diurnal.csv (283.1 req/s mean)"


def test_the_plan_says_what_part_of_a_pass_offers(tmp_path: Path) -> None:
    path = tmp_path / "ramp.csv"  # 10 arrivals in the first 10 s, 90 in the next 10: a pass of 100 in 20.2 s
    stamps = np.concatenate([np.linspace(0, 9.9, 10), np.linspace(10, 20, 90)])
    path.write_text("timestamp\n" + "".join(f"{t:.4f}\n" for t in stamps))
    trace = read_trace(path)
    assert trace.arrivals_within(10.0) == 10 and trace.arrivals_within(trace.period_s + 10.0) == 110
    plan = plan_lines(trace, 10.0)
    assert plan[1] == (
        "the 10 s played offer 10 arrivals, 1 req/s, not the pass's mean 4.95 req/s: the run replays part of a pass"
    )
    assert len(plan_lines(trace, 2 * trace.period_s)) == 1  # whole passes offer the mean
