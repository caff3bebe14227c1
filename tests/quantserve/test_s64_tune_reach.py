"""Tune stops early on an SLO out of reach only on what its model computes alone, as Triton's counters measured it.

Probe B (session 64): `tune build/demo/digits_int8 --slo-p99-ms 100 --quick --request-batch 100` stopped after its
baseline with "the fastest of 169 requests took 736.53 ms, 7.4x the 100 ms SLO", while the model computes a 100-row
request alone in 49-53 ms (ORT) and a later batching trial's fastest request took 97 ms: a closed loop's fastest
request holds its queueing, and more instances or batching shorten that.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantserve.cli.tune import TuneResult, make_config
from quantserve.cli.tune_trials import SCRATCH_MODEL, Samples, Trial
from tests.quantserve.test_s56_tune_truth import ClientBound
from tests.quantserve.test_tune_limits import settings

ROWS = 100
BASE = make_config("", 0, "powers", 0, 1, ROWS)
MB16 = make_config("", 16, "powers", 500, 1, ROWS)


def measured(config: Any, fastest_ms: float, **more: Any) -> Trial:
    return Trial(config, 20.0, fastest_ms * 1.5, fastest_ms * 2, 0, 0.0, requests=169, fastest_ms=fastest_ms, **more)


def test_a_queued_fastest_request_does_not_stop_a_search_whose_model_computes_within_the_slo(tmp_path: Path) -> None:
    from quantserve.cli.tune_reach import out_of_reach

    probe = settings(tmp_path, users=16, slo_p99_ms=100.0, request_batch=ROWS)
    baseline = measured(BASE, 736.53, compute_ms=51.0, requests_per_execution=1.0)
    assert out_of_reach(probe, [baseline]) == ""  # before: "the fastest of 169 requests took 736.53 ms, 7.4x ..."


def test_no_compute_figure_recorded_no_early_stop(tmp_path: Path) -> None:
    from quantserve.cli.tune_reach import out_of_reach

    tight = settings(tmp_path, slo_p99_ms=1.0)
    assert out_of_reach(tight, [measured(BASE, 2.5)]) == ""  # before: stopped on the fastest request alone
    both = settings(tmp_path, slo_p99_ms=1.0, builds={"int8": tmp_path, "fp32": tmp_path})
    fp32 = measured(make_config("fp32", 0, "powers", 0, 1), 9.0, compute_ms=8.0, requests_per_execution=1.0)
    int8 = measured(make_config("int8", 16, "powers", 500, 1), 9.0)  # its counters unread: it may compute faster
    assert out_of_reach(both, [fp32, int8]) == ""


def test_the_stop_names_the_compute_time_its_trial_and_the_fastest_request(tmp_path: Path) -> None:
    from quantserve.cli.tune_reach import out_of_reach

    tight = settings(tmp_path, slo_p99_ms=1.0)
    trials = [
        measured(BASE, 3.1, compute_ms=2.6, requests_per_execution=1.0),
        measured(MB16, 2.9, compute_ms=10.0, requests_per_execution=4.0),  # 10 ms shared by 4 requests: 2.5 each
    ]
    assert out_of_reach(tight, trials) == (
        "its model computes a 1-row request (--request-batch) in 2.50 ms in Triton, 2.5x the 1 ms SLO "
        "(Triton's compute time per execution, "
        "10.00 ms, shared by its 4.0 requests on average: trial 2, mb1600 pref 200,400,800,1600 q500us x1), and "
        "no configuration serves a request faster than its model computes it; the fastest of 338 requests took 2.90 ms"
    )
    assert "(Triton's compute time per execution: trial 1, no batching x1)" in out_of_reach(tight, trials[:1])
    assert out_of_reach(settings(tmp_path, slo_p99_ms=1.3), trials) == ""  # 1.3 ms >= half of 2.5 ms: it might
    # a request served within the SLO (a trace's smaller one): whatever the mean compute, not out of reach
    assert out_of_reach(tight, [measured(BASE, 0.9, compute_ms=2.6, requests_per_execution=1.0)]) == ""


def test_a_window_records_tritons_compute_time_and_requests_per_execution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantserve.cli.tune_server import measure_window

    ClientBound(monkeypatch, 4500.0)  # 500 requests in 500 executions, compute 10 + 500 + 10 us a request
    samples = measure_window(settings(tmp_path, users=16), "127.0.0.1:1", SCRATCH_MODEL, tmp_path / "w", None, 3.0)
    one = samples.trial(BASE, 100.0)
    assert one.compute_ms == pytest.approx(0.52) and one.requests_per_execution == pytest.approx(1.0)
    both = (samples + Samples(np.array([5.0]), np.array([True]), 1.0)).trial(BASE, 100.0)  # counters unread there
    assert both.compute_ms == pytest.approx(0.52)
    unread = Samples(np.array([5.0]), np.array([True]), 1.0).trial(BASE, 100.0)
    assert unread.compute_ms is None and unread.requests_per_execution is None
    assert one.to_json()["compute_ms"] == pytest.approx(0.52)


def test_a_stopped_search_with_no_goodput_says_which_configuration_it_kept(tmp_path: Path) -> None:
    from quantserve.cli.tune_lines import best_line
    from quantserve.cli.tune_verdict import slo_missed

    tight = settings(tmp_path, slo_p99_ms=1.0)
    base, nearest = measured(BASE, 40.0), measured(MB16, 30.0)
    result = TuneResult([base, nearest], nearest, base, 1.0, tight, search_best=nearest, search_baseline=base)
    result.stopped = "its model computes a request in 25.00 ms in Triton, …"
    line = best_line(result.to_json())
    assert line.startswith("lowest p99, no trial met the SLO: max batch 1600"), line  # before: "best: max batch …"
    assert slo_missed(result).endswith(
        "(stopped after 2 trial(s)); kept: mb1600 pref 200,400,800,1600 q500us x1, the lowest p99 measured "
        "(p99 60.0 ms)"
    )
    assert not math.isnan(result.best.p99_ms)
