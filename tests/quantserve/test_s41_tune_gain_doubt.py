"""A gain over a baseline the confirmation measured far from the search's own figure is said to be uncertain
(session 41: "2.86x goodput (both confirmed back to back)" over a baseline confirmed at 432 good req/s that the
search had measured at 802; alternated by hand the gain was 1.19x)."""

from __future__ import annotations

from pathlib import Path

from quantserve.cli.tune_lines import gain_line
from tests.quantserve.test_s29_tune_report import FP32_BASE, MB8, confirmed
from tests.quantserve.test_tune_limits import settings, trial


def test_a_baseline_that_moved_makes_the_gain_uncertain(tmp_path: Path) -> None:
    search = [trial(FP32_BASE, 802.0, 20.0, 802.0), trial(MB8, 1246.0, 25.0, 1246.0)]
    result = confirmed(trial(FP32_BASE, 432.0, 198.0, 432.0), trial(MB8, 1237.0, 26.0, 1237.0), search)
    result.settings = settings(tmp_path, slo_p99_ms=30.0)
    line = gain_line(result.to_json())
    assert "(both confirmed back to back); uncertain: the baseline measured 802.0 good req/s in the search and " in line
    assert "432.0 when confirmed (0.54x)" in line and "the search's own figures give 1.55x" in line


def test_a_steady_baseline_leaves_the_gain_as_it_is(tmp_path: Path) -> None:
    search = [trial(FP32_BASE, 802.0, 20.0, 802.0), trial(MB8, 1246.0, 25.0, 1246.0)]
    result = confirmed(trial(FP32_BASE, 760.0, 21.0, 760.0), trial(MB8, 1237.0, 26.0, 1237.0), search)
    result.settings = settings(tmp_path, slo_p99_ms=30.0)
    assert "uncertain" not in gain_line(result.to_json())
