"""A real tritonserver serving three variants of a tiny MLP (FP32, INT8, damaged), shared per module; and a server of
the MLP a test of its own kills and restarts (`serve_mlp`, `serve_supervised_mlp`)."""

from __future__ import annotations

import functools
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import loadtest_models as models
import pytest
import restarted_server
from restarted_server import ServerOf

from serving.server import TritonServer


@dataclass
class ServedModels:
    """Where the server listens and the data files the tests send."""

    url: str
    metrics_url: str
    pid: int
    load_data: Path
    heldout: Path
    fp32: str = "mlp_fp32"
    int8: str = "mlp_int8"
    damaged: str = "mlp_damaged"
    gain: str = "mlp_gain"  # a second input and an output with one value per sample


@pytest.fixture(scope="module")
def served_models(
    tmp_path_factory: pytest.TempPathFactory,
    triton_server_factory: Callable[..., object],
    monkeypatch_module: pytest.MonkeyPatch,
) -> ServedModels:
    from serving.deploy import deploy

    root = tmp_path_factory.mktemp("loadtest")
    monkeypatch_module.setenv("QUANTSERVE_CACHE_DIR", str(root / "calib-cache"))
    weights = models.mlp_weights()
    data_dir = root / "data"
    load_data = models.labeled_data(256, weights, seed=3).save(data_dir / "load.npz")
    heldout = models.labeled_data(1000, weights, seed=4).save(data_dir / "heldout.npz")
    calib = models.labeled_data(256, weights, seed=5).save(data_dir / "calib.npz")
    builds = root / "build"
    fp32 = models.make_build_dir(builds / "mlp_fp32", weights=weights)
    damaged = models.make_build_dir(builds / "mlp_damaged", weights=models.perturbed(weights, scale=1.0))
    int8 = models.make_int8_build(fp32, calib, builds)
    repo = root / "repo"
    gain = models.make_gain_build(builds / "mlp_gain", weights)
    for name, build in (("mlp_fp32", fp32), ("mlp_int8", int8), ("mlp_damaged", damaged), ("mlp_gain", gain)):
        deploy(build, repo, name, max_batch=32, max_queue_delay_us=500, instances=1)
    server = triton_server_factory(repo)
    return ServedModels(server.grpc_url, server.metrics_url, server.pid, load_data, heldout)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    patch = pytest.MonkeyPatch()
    yield patch  # type: ignore[misc]
    patch.undo()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium binary, or a skip saying it is missing."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium not installed (apt-get install -y chromium); `make test` installs it")
    return binary


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A gRPC address that accepts connections and never answers (a hung server), closed after the test."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def serve_mlp(tmp_path: Path, triton_server_factory: Callable[..., TritonServer]) -> ServerOf:
    """`restarted_server.mlp_server` in this test's folder: called with the model names, (server, load data)."""
    return functools.partial(restarted_server.mlp_server, tmp_path, triton_server_factory)


@pytest.fixture
def serve_supervised_mlp(
    tmp_path: Path, triton_server_factory: Callable[..., TritonServer], monkeypatch: pytest.MonkeyPatch
) -> ServerOf:
    """`restarted_server.supervised_mlp_server` in this test's folder: as `serve_mlp`, its serve record written."""
    return functools.partial(restarted_server.supervised_mlp_server, tmp_path, triton_server_factory, monkeypatch)
