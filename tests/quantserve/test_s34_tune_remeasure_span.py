"""tune's re-measure of a trace replays the part of the trace its trials' windows did.

traffic34: trials of `tune --quick --trace` measured windows of 10 s and 30 s (window 2: `trace_second_window_s`),
each from the trace's start; the re-measure ran 1 + 2 x 10 s from the start and compared its 9.9 req/s and p99 with
figures of other seconds of the trace ("1.41x the claim", p99 4.17x).
"""

from __future__ import annotations

from pathlib import Path

from quantserve.cli.tune_trace import trace_second_window_s
from quantserve.cli.tune_winner import remeasure_seconds
from tests.quantserve.test_s31_tune_faults import _late_trace, _settings


def test_a_trace_is_re_measured_over_its_warm_up_and_window_2(tmp_path: Path) -> None:
    settings = _settings(tmp_path, trace=_late_trace(tmp_path))
    assert (settings.warmup_s, settings.window_s, trace_second_window_s(settings)) == (1.0, 10.0, 30.0)  # as probed
    assert remeasure_seconds(settings) == 31.0  # not 1 + 2 x 10 s


def test_a_closed_loop_is_re_measured_over_a_trial_s_warm_up_and_two_windows(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert remeasure_seconds(settings) == settings.warmup_s + 2 * settings.window_s
