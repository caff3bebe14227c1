"""A live deploy during a load test against a real tritonserver: Triton drops version 1's counters when it unloads
it, so the step's server-side figures are left out with a note naming the change (1 → 2)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import loadtest_models as models
import pytest

from loadtest.harness import run_load
from loadtest.results import LoadResult
from loadtest.triton_metrics import scrape, served_versions
from quantserve.cli import main

pytestmark = pytest.mark.e2e


def test_a_deploy_in_the_window_leaves_out_triton_figures(triton_server_factory, tmp_path: Path) -> None:
    repo, v2, data = models.version_swap_repo(tmp_path)
    server = triton_server_factory(repo, model_control="explicit", load_models=("*",))
    results: list[LoadResult] = []
    load = threading.Thread(
        target=lambda: results.append(
            run_load(server.grpc_url, "mlp", data, 2, 6.0, tmp_path / "out", metrics_url=server.metrics_url)
        ),
        daemon=True,
    )
    load.start()
    deadline = time.monotonic() + 20
    while served_versions(scrape(server.metrics_url), "mlp")["1"]["nv_inference_request_success"] < 50:
        assert time.monotonic() < deadline, "the load never reached the server"
        time.sleep(0.2)
    time.sleep(1.0)  # well inside the measured window
    deploy_args = ["deploy", str(v2), "--repo", str(repo), "--name", "mlp", "--max-batch", "32"]
    assert main([*deploy_args, "--url", server.control_url]) == 0
    load.join(timeout=60)
    (result,) = results
    assert result.requests > 100 and result.server is None and result.server_restarted is None
    assert "model 'mlp' served versions changed during the window (1 → 2)" in (result.counters_note() or "")
    first, second = result.version_spans or []  # when each version answered, from Triton's answers (session 50)
    assert (first["version"], second["version"]) == (1, 2) and first["first_s"] < second["first_s"]
    assert any(" answered by version 1 from " in note for note in result.notes())
