"""Closed-loop pruning compares like windows (session 32, issue 11 leftover 2).

A trial's window 1 was pruned against the best rival's two windows; with a trace it had been fixed (window 1 against
window 1, session 31), not in a closed loop, where window 1 is also not window 2's measurement: the first load after
its model's load, 3 s in --quick, while window 2 stretches to 1000 requests. A probe's baseline (16 users, --quick)
served 64 req/s in window 1 and 151 over both: a trial serving 85 in window 1 was clearly worse (< 0.6 x 151) than it.
No server: the windows are given (the session-31 stand-in).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from quantserve.cli.tune_trials import Samples, Trial
from tests.quantserve.test_s31_tune_faults import MB4, _bench, _settings


def _window(rate: float, seconds: float = 3.0) -> Samples:
    requests = round(rate * seconds)
    samples = Samples(np.full(requests, 10.0), np.ones(requests, bool), seconds)
    samples.windows = ((1.0, seconds),)
    return samples


def _probe_baseline(tmp_path: Path) -> Trial:
    """The probe's baseline: 1862 requests over 3.089 s and 9.232 s, 64.1 req/s in window 1, every one in the SLO."""
    baseline = Trial(_settings(tmp_path).baseline(), 151.1, 60.0, 400.0, 0, 151.1, requests=1862, window_s=12.321)
    baseline.first_window = {"throughput_rps": 64.1, "goodput_rps": 64.1}
    return baseline


def test_a_closed_loop_trial_is_pruned_on_window_1_against_the_others_window_1(tmp_path: Path) -> None:
    bench = _bench(tmp_path, [None, None])
    windows: list[int] = []

    def window(index: int, window_s: float | None = None) -> Samples:
        windows.append(index)
        return _window(85.0)

    bench.window = window  # type: ignore[method-assign]
    measured = bench.run(MB4, [_probe_baseline(tmp_path)])
    assert not measured.pruned and windows == [1, 2]  # before: pruned after window 1 (85 < 0.6 x 151.1)


def test_a_closed_loop_trial_clearly_below_the_others_window_1_is_still_pruned(tmp_path: Path) -> None:
    bench = _bench(tmp_path, [None])
    bench.window = lambda index, window_s=None: _window(30.0)  # type: ignore[method-assign]  # < 0.6 x 64.1
    measured = bench.run(MB4, [_probe_baseline(tmp_path)])
    assert measured.pruned and len(measured.windows) == 1
