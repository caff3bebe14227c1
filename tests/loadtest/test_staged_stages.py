"""A staged load (`--stages`) is reported stage by stage, between the moments Locust's `LoadTestShape` switched
users; the step's own row says it blends them.

`--stages 2:6s,48:6s,2:6s` printed one row, p50 1.08 ms (the 2-user stages) beside p99 28.1 ms (the 48-user
stage): figures no stage had, and the per-second timeline did not say how many users ran when.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.stage_figures import read_stage_starts, stage_figures, write_stage_start
from quantserve.cli import main
from serving.server import TritonServer


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("stages"))
    return triton_server_factory(repo), data  # free ports on 127.0.0.1


def test_stages_split_at_the_recorded_switches(tmp_path: Path) -> None:
    """Requests count in the stage their answer came back in; the last stage ends with the window; a stage the
    shape skipped (a late tick) has no row, and a stage that answered nothing has no latency."""
    for number, users, at in ((1, 2, 99.0), (2, 48, 104.0), (4, 2, 106.0)):  # the shape started stage 1 before
        write_stage_start(tmp_path, number, 4, users, 2.0, at)
    ends = np.array([100.5, 103.99, 104.0, 105.0, 106.5, 107.0])
    rows = np.column_stack([ends, [1.0, 2.0, 30.0, 40.0, 3.0, 5.0], [1, 1, 1, 0, 0, 0]])
    first, spike, last = stage_figures(rows, 100.0, 107.0, read_stage_starts(tmp_path))
    labels = ["stage 1/4: 2 users", "stage 2/4: 48 users", "stage 4/4: 2 users"]
    assert [s.label for s in (first, spike, last)] == labels
    assert (first.start_s, first.end_s, spike.start_s, spike.end_s, last.end_s) == (0.0, 4.0, 4.0, 6.0, 7.0)
    assert (first.requests, spike.requests, last.requests) == (2, 2, 2)
    assert (spike.failed_requests, last.failed_requests) == (1, 2)
    assert first.latency.p99_ms < 2.0 < spike.latency.p50_ms and math.isnan(last.latency.p50_ms)
    assert first.throughput_rps == pytest.approx(2 / 4.0) and spike.throughput_rps == pytest.approx(1 / 2.0)


def test_stages_survive_the_results_file(tmp_path: Path) -> None:
    write_stage_start(tmp_path, 1, 1, 3, 5.0, 10.0)
    stages = stage_figures(np.array([[11.0, 2.5, 1.0]]), 10.0, 15.0, read_stage_starts(tmp_path))
    latency = LatencySummary.from_samples([2.5])
    result = LoadResult("m", "u", "staged", 3, 5.0, 1, 0, 0.2, 0.2, latency, stages=stages)
    path = LoadRun("m", [result]).save(tmp_path)
    assert LoadRun.load(path).results[0].stages == stages
    assert "all stages together" in result.label


@pytest.mark.serial  # it judges how long each stage ran
def test_a_spike_is_reported_stage_by_stage(
    served_mlp: tuple[TritonServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Console, results JSON and report: a row per stage, spanning the window without gap or overlap; the step's
    own row labelled as all stages together."""
    server, data = served_mlp
    target = ["--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--out", str(tmp_path)]
    assert main(["loadtest", *target, "--stages", "1:2s,6:2s,1:2s", "--metrics-url", server.metrics_url]) == 0
    console = capsys.readouterr().out
    (result,) = LoadRun.load(tmp_path / "load-mlp-staged.json").results
    assert [(s.number, s.users) for s in result.stages] == [(1, 1), (2, 6), (3, 1)]
    assert sum(s.requests for s in result.stages) == result.requests
    edges = [(s.start_s, s.end_s) for s in result.stages]
    assert edges[0][0] == 0.0 and edges[-1][1] == pytest.approx(result.window_s, abs=1e-3)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(edges)), edges
    assert all(abs((s.end_s - s.start_s) - 2.0) < 0.8 for s in result.stages), edges
    assert "all stages together" in console and "stage by stage" in console and "2/3" in console
    report = (tmp_path / "report.md").read_text()
    for stage in result.stages:
        assert f"| {stage.number}/3 | {stage.users} | " in report
    assert "INCOMPLETE" not in report  # its raw records are the saved result's
    saved = json.loads((tmp_path / "load-mlp-staged.json").read_text())
    assert [s["users"] for s in saved["results"][0]["stages"]] == [1, 6, 1]
