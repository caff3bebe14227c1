"""The report's trace line says how much of the trace a window played (session 46: a one-pass replay of a 20 s
trace read "looped" in the HTML while its plan line said "1 pass")."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import trace_lines
from loadtest.results import LoadResult

TRACE = {
    "file": "t.csv",
    "scale": 1.0,
    "requests_per_pass": 520,
    "pass_s": 20.0,
    "speed": 1.0,
    "mean_rate_rps": 26.0,
    "peak_rate_rps_1s": 80.0,
    "gap_cv": 2.1,
}


def _run(window_s: float) -> LoadRun:
    latency = LatencySummary.from_samples(np.array([1.0, 2.0, 3.0]))
    result = LoadResult(
        "m",
        "127.0.0.1:1",
        "open",
        0,
        window_s,
        520,
        0,
        26.0,
        26.0,
        latency,
        request_batch=None,
        rate_rps=26.0,
        trace=dict(TRACE),
        offered_window_s=window_s,
    )
    return LoadRun("m", [result])


@pytest.mark.parametrize(
    ("window_s", "words"), [(20.0, "(1 pass;"), (50.0, "(looped: 2.5 passes;"), (8.0, "(0.4 of a pass;")]
)
def test_a_trace_line_says_the_passes_its_window_played(window_s: float, words: str) -> None:
    (line,) = trace_lines([_run(window_s)])
    assert words in line
    if window_s <= 20.0:
        assert "looped" not in line
