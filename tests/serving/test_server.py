"""TritonServer and TritonGrpcClient against a real tritonserver with small Python-backend models."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient
from serving.server import ServerOptions, TritonServer
from serving.triton_install import TritonInstall
from serving.triton_runner import TritonRunner

CONFIG = """backend: "python"
max_batch_size: 4
input [{ name: "x" data_type: TYPE_FP32 dims: [3] }]
output [{ name: "y" data_type: TYPE_FP32 dims: [3] }]
instance_group [{ kind: KIND_CPU count: 1 }]
"""

DOUBLE_MODEL = """import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [
            pb_utils.InferenceResponse([pb_utils.Tensor("y", pb_utils.get_input_tensor_by_name(r, "x").as_numpy() * 2)])
            for r in requests
        ]
"""


def write_python_model(repo: Path, name: str, source: str) -> None:
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "config.pbtxt").write_text(CONFIG)
    (repo / name / "1" / "model.py").write_text(source)


@pytest.fixture(scope="module")
def double_server(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> TritonServer:
    repo = tmp_path_factory.mktemp("repo")
    write_python_model(repo, "double", DOUBLE_MODEL)
    return triton_server_factory(repo)


def test_taken_port_is_named(tmp_path: Path, free_port_factory: Callable[[], int]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ServerOptions(
            tmp_path, grpc_port=port, http_port=free_port_factory(), metrics_port=free_port_factory()
        )
        server = TritonServer(options)
        with pytest.raises(QuantserveError, match=f"grpc port {port} on 127.0.0.1 is already in use"):
            server.start()
    assert server.pid is None


def test_missing_repository_is_named(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match="model repository not found"):
        TritonServer(ServerOptions(tmp_path / "nope")).start()


@pytest.mark.e2e
def test_server_ready_and_client_round_trip(double_server: TritonServer) -> None:
    assert double_server.loaded_models() == {"double": ["1"]}
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with TritonGrpcClient(double_server.grpc_url, timeout_s=10) as client:
        assert client.is_server_ready() and client.is_model_ready("double")
        np.testing.assert_array_equal(client.infer("double", {"x": x})["y"], x * 2)
        # Triton counts a request after its answer has gone out (and leaves a zero count out of the answer), so the
        # count is read until it shows the request, a few seconds at most.
        deadline = time.monotonic() + 10
        while True:
            count = int(client.statistics("double")["model_stats"][0].get("inference_count", 0))
            if count >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert count >= 2


@pytest.mark.e2e
def test_runner_slices_batches_larger_than_max_batch(double_server: TritonServer) -> None:
    x = np.random.default_rng(0).normal(size=(11, 3)).astype(np.float32)
    with TritonRunner(double_server.grpc_url, "double") as runner:
        assert [(s.name, s.dtype, s.shape) for s in runner.input_specs()] == [("x", "float32", ("batch", 3))]
        np.testing.assert_allclose(runner.infer({"x": x})["y"], x * 2)


@pytest.mark.e2e
def test_model_that_fails_to_load_is_named(tmp_path: Path, triton_server_factory: Callable) -> None:
    write_python_model(tmp_path, "broken", "raise RuntimeError('weights are corrupt')\n")
    server = triton_server_factory(tmp_path, start=False)
    with pytest.raises(QuantserveError, match=r"model 'broken' failed to load: .*weights are corrupt"):
        server.start()
    assert not server.is_running()


def test_options_become_the_command_line(tmp_path: Path) -> None:
    options = ServerOptions(
        tmp_path, grpc_port=9101, http_port=9100, metrics_port=9102, model_control="explicit", load_models=("a", "b")
    )
    install = TritonInstall(Path("/opt/bin/tritonserver"), Path("/opt/backends"))
    command = TritonServer(options).command(install)
    assert command[0] == "/opt/bin/tritonserver"
    assert f"--model-repository={tmp_path.resolve()}" in command and "--model-control-mode=explicit" in command
    assert [a for a in command if "-port=" in a] == ["--grpc-port=9101", "--http-port=9100", "--metrics-port=9102"]
    assert command[-2:] == ["--load-model=a", "--load-model=b"]


def test_unknown_model_control_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QuantserveError, match=r"^model control mode 'lazy' is not one of none, explicit, poll$"):
        ServerOptions(tmp_path, model_control="lazy")


def test_a_port_out_of_range_or_shared_is_one_line(tmp_path: Path) -> None:
    """`serve --grpc-port 70000` was an OverflowError traceback; one port for gRPC and HTTP, tritonserver's exit 1
    under fifteen lines of its usage text."""
    with pytest.raises(QuantserveError, match=r"^--grpc-port 70000 is not a port \(1–65535\)$"):
        ServerOptions(tmp_path, grpc_port=70000)
    with pytest.raises(QuantserveError, match=r"^the three ports must differ: --grpc-port 8000, --http-port 8000, "):
        ServerOptions(tmp_path, grpc_port=8000, http_port=8000)


def test_free_ports_are_distinct(tmp_path: Path) -> None:
    options = ServerOptions.on_free_ports(tmp_path, log_verbose=1)
    assert len(set(options.ports.values())) == 3 and options.log_verbose == 1
