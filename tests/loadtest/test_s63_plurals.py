"""One user and one arrival read in the singular (session 63, probe F): the sweep line read "against 1 users", the
trace plan "the 1 s played offer 1 arrivals"."""

from __future__ import annotations

import numpy as np
from test_sweep_knee import _sweep

from loadtest.arrival_trace import ArrivalTrace
from loadtest.sweep_knee import sweep_note
from loadtest.trace_plan import played_line


def test_a_sweep_from_one_user_says_user() -> None:
    assert sweep_note(_sweep((1, 615.5, 5.0), (2, 1085.4, 6.9))) == (
        "slow sweep: throughput still rose at the highest concurrency, 2 users (1085.4 req/s, p99 6.9 ms) against "
        "1 user (615.5 req/s, p99 5.0 ms): the server's capacity lies beyond this sweep; sweep higher to find it"
    )
    peaked = sweep_note(_sweep((1, 300.0, 5.0), (2, 100.0, 9.0)))
    assert peaked is not None and "1 users" not in peaked and "peaked at 1 user (300.0" in peaked
    assert "past 1 user more clients" in peaked


def test_a_window_that_plays_one_arrival_says_arrival() -> None:
    trace = ArrivalTrace("late.csv", np.array([0.5, 20.0, 25.0]), 30.0)  # 0.1 req/s; the first second holds one
    assert played_line(trace, 1.0) == (
        "the 1 s played offer 1 arrival, 1 req/s, not the pass's mean 0.1 req/s: the run replays part of a pass"
    )
