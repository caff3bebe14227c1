"""Triton's latency summaries are on by default (session 58): `--metrics-config=summary_latencies=true`.

Before, `quantserve serve` could not turn them on: a probe had to start a plain tritonserver to read Triton's own
request p99 (94.0 ms) beside the load test's (160.55 ms). With them, /metrics carries quantiles of each model's
request, queue and compute times over a sliding window, which a load test's report sets beside the client's.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadtest.triton_metrics import parse_metrics, request_quantiles
from quantserve.cli import build_parser
from quantserve.cli.commands.serve import server_options
from serving.ports import free_ports
from serving.server import ServerOptions, TritonServer
from serving.triton_install import TritonInstall

FLAG = "--metrics-config=summary_latencies=true"


def test_the_command_line_asks_for_summary_latencies_unless_told_not_to(tmp_path: Path) -> None:
    install = TritonInstall(Path("/bin/tritonserver"), Path("/backends"))
    on = TritonServer(ServerOptions(tmp_path, load_models=("a",))).command(install)
    assert FLAG in on
    assert on[-1] == "--load-model=a"  # the models to load stay last
    assert FLAG not in TritonServer(ServerOptions(tmp_path, summary_latencies=False)).command(install)


def test_serve_keeps_them_by_default_and_has_a_flag_to_leave_them_out(tmp_path: Path) -> None:
    parser = build_parser()
    assert server_options(parser.parse_args(["serve", "--repo", str(tmp_path)])).summary_latencies
    off = parser.parse_args(["serve", "--repo", str(tmp_path), "--no-summary-latencies"])
    assert not server_options(off).summary_latencies


@pytest.mark.e2e
def test_a_served_model_exports_its_request_quantiles(
    triton_server_factory: Callable[..., TritonServer], tmp_path: Path
) -> None:
    from serving_models import make_build_dir

    from serving.client import TritonGrpcClient
    from serving.deploy import deploy

    repo = tmp_path / "repo"
    deploy(make_build_dir(tmp_path / "build"), repo, "dense", max_batch=8)
    grpc, http, metrics = free_ports(3)  # QUANTSERVE_PORT_RANGE where set
    server = triton_server_factory(repo, grpc_port=grpc, http_port=http, metrics_port=metrics, ports_chosen=True)
    with TritonGrpcClient(server.grpc_url) as client:
        for _ in range(20):
            client.infer("dense", {"x": np.ones((2, 8), np.float32)})
    with urllib.request.urlopen(server.metrics_url, timeout=10) as response:
        text = response.read().decode()
    assert 'nv_inference_request_summary_us{model="dense",version="1",quantile="0.99"}' in text
    quantiles = request_quantiles(parse_metrics(text), "dense")
    assert {"0.5", "0.99"} <= quantiles.keys() and 0 < quantiles["0.5"] <= quantiles["0.99"]
