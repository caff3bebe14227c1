"""Tune counts Triton's figures of the version it just deployed, and its early stop says the request size and a busy
machine.

Probe D (session 64): trial 6's window opened while version 5 was still unloading; its scrapes held v5 (512 requests)
+ v6 (22) at the start and v6 (121) alone at the end. Tune loads with no --model-version, so the delta summed every
version (-413 requests), the counters were judged not whole and the trial lost compute_ms, requests_per_execution and
outside_share. Its early stop read "its model computes a request in 69.38 ms in Triton, 2.3x the 30 ms SLO" for a
100-row request (--request-batch 100) measured while other processes took 73 % of the cores (39.2 ms in a quieter run).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from loadtest.load_settings import LoadSettings
from loadtest.partial_counters import counters_not_whole
from loadtest.percentiles import LatencySummary
from loadtest.recording_files import Window
from loadtest.results import LoadResult
from loadtest.step_result import addressed_window
from loadtest.triton_metrics import COUNTERS, VERSIONS, breakdown
from quantserve.cli.tune import make_config
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import SCRATCH_MODEL, Trial
from tests.quantserve.test_tune_limits import settings

ROWS = 100


def counters(requests: float, compute_us: float = 39_000.0) -> dict[str, float]:
    """One version's cumulative counters: `requests` requests, one an execution, `compute_us` of infer each."""
    values = dict.fromkeys(COUNTERS, 0.0)
    values.update(
        nv_inference_request_success=requests,
        nv_inference_count=requests * ROWS,
        nv_inference_exec_count=requests,
        nv_inference_request_duration_us=requests * (compute_us + 500.0),
        nv_inference_compute_infer_duration_us=requests * compute_us,
    )
    return values


def scrape(**versions: dict[str, float]) -> dict[str, Any]:
    """A scrape of the scratch model with its versions (`parse_metrics`' shape: the sum beside each version)."""
    by_version = {name.removeprefix("v"): values for name, values in versions.items()}
    summed = {c: sum(v[c] for v in by_version.values()) for c in COUNTERS}
    return {SCRATCH_MODEL: {**summed, VERSIONS: by_version}}


# trial06-w1's window.json: v5 still listed with its 512 requests as the window opened, at zero at its end
BEFORE = scrape(v5=counters(512, 41_000.0), v6=counters(22), v4=counters(0))
AFTER = scrape(v5=counters(0), v6=counters(121), v4=counters(0))


def test_the_window_counts_only_the_version_tune_deployed(tmp_path: Path) -> None:
    load = LoadSettings("127.0.0.1:1", SCRATCH_MODEL, tmp_path / "d.npz", counters_version="6")
    assert load.label == SCRATCH_MODEL  # requests still name no version: Triton's choice, the one just loaded
    window = addressed_window(Window(0.0, 10.0, BEFORE, AFTER), load)
    server = breakdown(window.metrics_before, window.metrics_after, SCRATCH_MODEL, load.counted_version)
    assert server.requests_succeeded == 99 and server.executions == 99  # before: -413, every version summed
    assert server.avg_compute_infer_us == pytest.approx(39_000.0)
    latency = LatencySummary.from_samples([5.0] * 99)
    result = LoadResult(SCRATCH_MODEL, load.url, "closed", 16, 10.0, 99, 0, 9.9, 990.0, latency)
    result.server = server
    assert counters_not_whole(window, result, 0, load.counted_version) is None  # whole: the trial keeps its figures
    summed = breakdown(BEFORE, AFTER, SCRATCH_MODEL)  # a loadtest naming no version still sums them all
    assert summed.requests_succeeded == -413


def test_each_trial_window_is_told_the_version_its_trial_deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loadtest import harness
    from serving import deploy

    bench = TrialServer(settings(tmp_path), tmp_path / "out")
    bench.server = SimpleNamespace(  # type: ignore[assignment]
        control=lambda timeout_s: SimpleNamespace(load=lambda name: None),
        grpc_url="127.0.0.1:1",
        metrics_url="http://127.0.0.1:2/metrics",
        pid=None,
    )
    monkeypatch.setattr(deploy, "deploy", lambda *_, **__: SimpleNamespace(version=6))
    asked: list[LoadSettings] = []

    def run_step(load: LoadSettings, *_: Any, **__: Any) -> Any:
        asked.append(load)
        raise RuntimeError("measured")

    monkeypatch.setattr(harness, "run_step", run_step)
    bench.install(make_config("", 0, "powers", 0, 1))
    with pytest.raises(RuntimeError, match="measured"):
        bench.window(1)
    assert asked[0].counters_version == "6" and asked[0].model_version == ""


def test_the_early_stop_says_the_request_size_and_a_busy_machine(tmp_path: Path) -> None:
    from quantserve.cli.tune_reach import out_of_reach

    probe = settings(tmp_path, users=16, slo_p99_ms=30.0, request_batch=ROWS)
    base = make_config("", 0, "powers", 0, 1, ROWS)
    busy = Trial(base, 20.0, 700.0, 1400.0, 0, 0.0, requests=169, fastest_ms=400.0, others_share=0.73)
    busy.compute_ms, busy.requests_per_execution = 69.38, 1.0
    line = out_of_reach(probe, [busy])
    assert line.startswith(
        "its model computes a 100-row request (--request-batch) in 69.38 ms in Triton, 2.3x the 30 ms SLO "
        "(Triton's compute time per execution: trial 1, no batching x1, while other processes took 73% of the cores)"
    ), line
    quiet = Trial(base, 20.0, 700.0, 1400.0, 0, 0.0, requests=169, fastest_ms=400.0, others_share=0.1)
    quiet.compute_ms, quiet.requests_per_execution = 69.38, 1.0
    assert "of the cores" not in out_of_reach(probe, [quiet])
    one_row = settings(tmp_path, users=16, slo_p99_ms=30.0)
    assert out_of_reach(one_row, [quiet]).startswith("its model computes a 1-row request (--request-batch) in 69.38")
