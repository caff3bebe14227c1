"""`quantserve serve --allow-failed-models` serves the models that load when others do not (issue 11).

Without it a model that fails to load at the first start still stops serve, naming it. With it serve starts, names
each model that did not load with Triton's reason, and runs Triton with non-strict readiness: under strict readiness
one broken model, at start or added later, held /v2/health/ready false although the good models answered.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_deploy_checks import serve_args
from test_supervisor import Serve

from quantserve.cli import main
from serving.client import TritonGrpcClient
from serving.control import ControlClient
from serving.deploy import deploy
from serving.server import ServerOptions, TritonServer
from serving.triton_install import TritonInstall

CORRUPT = "raise RuntimeError('weights are corrupt')\n"


def deploy_broken(build: Path, repo: Path, name: str) -> None:
    """A model whose backend fails to load it: its model.py raises on import."""
    deploy(build, repo, name, max_batch=8)
    (repo / name / "1" / "model.py").write_text(CORRUPT)


def infer_dense(grpc_url: str, tmp_path: Path) -> int:
    """`quantserve infer` on the good model: the clients' readiness checks are per model."""
    data = tmp_path / "x.npz"
    np.savez(data, x=np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32))
    return main(["infer", "--url", grpc_url, "--model", "dense", "--data", str(data), "--timeout", "20"])


def wait_unavailable(control: ControlClient, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(m.get("name") == name and m.get("state") == "UNAVAILABLE" for m in control.repository_index()):
            return
        time.sleep(0.25)
    raise AssertionError(f"Triton did not try '{name}' within {timeout_s:.0f} s: {control.repository_index()}")


def test_the_flag_turns_triton_readiness_per_model(tmp_path: Path) -> None:
    install = TritonInstall(Path("/bin/tritonserver"), Path("/backends"))
    strict = TritonServer(ServerOptions(tmp_path)).command(install)
    lenient = TritonServer(ServerOptions(tmp_path, allow_failed_models=True)).command(install)
    assert "--strict-readiness=true" in strict and "--strict-readiness=false" in lenient


@pytest.mark.e2e
def test_serve_refuses_a_broken_model_unless_allowed_then_serves_the_rest(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    deploy_broken(dense_build, repo, "broken")
    assert main(serve_args(repo, free_port_factory)) == 2
    err = capsys.readouterr().err
    assert err.startswith("quantserve: error: model 'broken' failed to load: Internal: RuntimeError: weights are")

    shutil.copytree(repo / "dense" / "1", repo / "n" / "1")  # no config.pbtxt: refused before Triton starts, else
    args = serve_args(repo, free_port_factory)
    serve = Serve([sys.executable, "-m", "quantserve", *args, "--allow-failed-models"])
    try:
        serve.wait_for("press Ctrl-C", timeout_s=60)
        warnings = sorted(line.rstrip() for line in serve.seen if line.startswith("warning: model"))
        assert len(warnings) == 2, serve.seen
        assert warnings[0].startswith("warning: model 'broken' not loaded: ") and "weights are corrupt" in warnings[0]
        assert warnings[1] == f"warning: model 'n' not loaded: {repo / 'n'} has no config.pbtxt; the other models serve"
        flags = dict(zip(args[1::2], args[2::2], strict=True))
        grpc_url = f"127.0.0.1:{flags['--grpc-port']}"
        control = ControlClient(f"127.0.0.1:{flags['--http-port']}", timeout_s=5)
        assert control.is_ready(), "/v2/health/ready must stay true while the good model serves"
        assert infer_dense(grpc_url, tmp_path) == 0

        deploy_broken(dense_build, repo, "late")  # explicit model control: serve loads it live, and it fails
        serve.wait_for("model 'late' failed to load", timeout_s=60)
        assert control.is_ready() and infer_dense(grpc_url, tmp_path) == 0
    finally:
        assert serve.stop() == 0, serve.seen


@pytest.mark.e2e
@pytest.mark.slow
def test_a_broken_model_added_under_poll_leaves_the_good_model_ready(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    """Triton polls the repository every 15 s (its --repository-poll-secs default), so this waits up to that long."""
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    server = triton_server_factory(repo, model_control="poll", allow_failed_models=True)
    deploy_broken(dense_build, repo, "broken")
    control = server.control()
    wait_unavailable(control, "broken", timeout_s=45)
    assert control.is_ready(), "one broken model made the whole server read as not ready"
    with TritonGrpcClient(server.grpc_url, timeout_s=10) as client:
        assert client.is_server_ready() and client.is_model_ready("dense")
    assert infer_dense(server.grpc_url, tmp_path) == 0
