"""End to end: deploy tiny ONNX models with the embedded layout, serve them with a real tritonserver,
infer over gRPC with concurrent requests, and compare to in-process ONNX Runtime."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from serving.client import TritonGrpcClient
from serving.deploy import deploy
from serving.server import TritonServer
from serving.triton_runner import TritonRunner

pytestmark = pytest.mark.e2e

# Long enough that concurrent single-sample requests meet in the queue; the batcher leaves early at 8.
BATCH_WINDOW_US = 300_000


def ort_run(model: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("builds")
    return {"dense": make_build_dir(root / "dense"), "sequence": make_build_dir(root / "sequence", "sequence")}


@pytest.fixture(scope="module")
def server(
    builds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable
) -> TritonServer:
    repo = tmp_path_factory.mktemp("repo")
    deploy(builds["dense"], repo, "dense", max_batch=8, max_queue_delay_us=BATCH_WINDOW_US, preferred=[8])
    (repo / "dense" / ".deploy-999999-0").mkdir()  # a dead deploy's staging folder: Triton must skip it
    deploy(builds["sequence"], repo, "seq_group", max_batch=8, max_queue_delay_us=BATCH_WINDOW_US)
    # padded on purpose, past the check (its mean over the sequence changes): the cut-back is tested
    deploy(
        builds["sequence"],
        repo,
        "seq_pad",
        max_batch=8,
        max_queue_delay_us=BATCH_WINDOW_US,
        ragged_batching="pad",
        check_pad=False,
    )
    return triton_server_factory(repo)


def test_all_models_load(server: TritonServer) -> None:
    assert server.loaded_models() == {"dense": ["1"], "seq_group": ["1"], "seq_pad": ["1"]}


def test_concurrent_requests_are_batched_and_match_onnxruntime(server: TritonServer, builds: dict[str, Path]) -> None:
    samples = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
    expected = ort_run(builds["dense"] / "model.onnx", {"x": samples})["probs"]
    with TritonGrpcClient(server.grpc_url, timeout_s=30) as client, ThreadPoolExecutor(8) as pool:
        for _ in range(3):  # a burst may straggle past the window on a loaded machine; see _concurrent
            before = client.statistics("dense")["model_stats"][0]
            results = list(pool.map(lambda i: client.infer("dense", {"x": samples[i : i + 1]})["probs"], range(8)))
            after = _settled_stats(client, "dense", int(before.get("inference_count", 0)) + 8)
            np.testing.assert_allclose(np.concatenate(results), expected, rtol=1e-5, atol=1e-6)
            inferences = int(after.get("inference_count", 0)) - int(before.get("inference_count", 0))
            executions = int(after.get("execution_count", 0)) - int(before.get("execution_count", 0))
            assert inferences == 8
            if executions < inferences:
                break
    assert executions < inferences, "Triton's dynamic batcher never put two requests into one execution in 3 bursts"


def _settled_stats(client: TritonGrpcClient, model: str, inferences: int) -> dict:
    """The model's counters once they show `inferences` rows: Triton counts a request after its answer has gone out
    (and leaves zero counts out of the answer), so a read right after the answers may not show them yet."""
    deadline = time.monotonic() + 10
    while True:
        stats = client.statistics(model)["model_stats"][0]
        if int(stats.get("inference_count", 0)) >= inferences or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def _ragged_requests() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.normal(size=(n, length, 4)).astype(np.float32) for n, length in [(1, 2), (2, 5), (1, 3), (3, 5)]]


def _concurrent(
    url: str, model: str, requests: list[np.ndarray], bursts: int = 1
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Responses to `requests` sent at once, and the fewest executions Triton needed for them.

    Whether concurrent requests meet in the batcher's window depends on the scheduler: on a loaded
    2-core machine one burst may straggle past the window. `bursts` sends the same burst up to that
    many times, stopping at the first one Triton batched (fewer executions than requests)."""
    fewest = len(requests) + 1
    with TritonGrpcClient(url, timeout_s=30) as client, ThreadPoolExecutor(len(requests)) as pool:
        for _ in range(bursts):
            stats = client.statistics(model)["model_stats"][0]
            before = int(stats.get("execution_count", 0))
            rows = int(stats.get("inference_count", 0)) + sum(len(tokens) for tokens in requests)
            results = list(pool.map(lambda tokens: client.infer(model, {"tokens": tokens}), requests))
            after = int(_settled_stats(client, model, rows).get("execution_count", 0))
            fewest = min(fewest, after - before)
            if fewest < len(requests):
                break
    return results, fewest


def test_ragged_requests_grouped_match_onnxruntime_exactly(server: TritonServer, builds: dict[str, Path]) -> None:
    requests = _ragged_requests()
    results, _ = _concurrent(server.grpc_url, "seq_group", requests)
    for tokens, got in zip(requests, results, strict=True):
        want = ort_run(builds["sequence"] / "model.onnx", {"tokens": tokens})
        assert got["y"].shape == (*tokens.shape[:2], 3)
        np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got["pooled"], want["pooled"], rtol=1e-5, atol=1e-6)


def test_ragged_requests_padded_are_cut_back_to_their_length(server: TritonServer, builds: dict[str, Path]) -> None:
    requests = _ragged_requests()
    results, executions = _concurrent(server.grpc_url, "seq_pad", requests, bursts=10)
    assert executions < len(requests), "requests of different lengths were never batched together in 10 bursts"
    for tokens, got in zip(requests, results, strict=True):
        want = ort_run(builds["sequence"] / "model.onnx", {"tokens": tokens})
        # Per-position outputs are unchanged by zero padding; the mean over the sequence is not compared.
        assert got["y"].shape == (*tokens.shape[:2], 3)
        np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5, atol=1e-6)


def test_triton_runner_matches_onnxruntime_runner(server: TritonServer, builds: dict[str, Path]) -> None:
    from optimizer.onnxruntime_runner import OnnxRuntimeRunner

    feeds = {"x": np.random.default_rng(2).normal(size=(19, 8)).astype(np.float32)}  # > max_batch: sliced
    with TritonRunner(server.grpc_url, "dense") as served, OnnxRuntimeRunner(builds["dense"] / "model.onnx") as local:
        got, want = served.infer(feeds), local.infer(feeds)
    np.testing.assert_allclose(got["probs"], want["probs"], rtol=1e-5, atol=1e-6)
    # One value per sample: served as [19, 1] (Triton needs non-empty dims), handed back as the model's [19].
    assert got["label"].shape == (19,) and np.array_equal(got["label"], want["label"])


def test_bad_request_gets_an_error_not_a_dead_model(server: TritonServer) -> None:
    from quantserve.errors import QuantserveError

    with TritonGrpcClient(server.grpc_url, timeout_s=30) as client:
        with pytest.raises(QuantserveError, match="inference on 'dense' failed"):
            client.infer("dense", {"x": np.zeros((1, 5), np.float32)})
        assert client.infer("dense", {"x": np.zeros((1, 8), np.float32)})["probs"].shape == (1, 4)


def test_infer_command_prints_and_saves(
    server: TritonServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(3).normal(size=(12, 8)).astype(np.float32)
    np.savez(tmp_path / "inputs.npz", x=x, labels=np.zeros(12, np.int64))
    out = tmp_path / "out.npz"
    argv = ["infer", "--url", server.grpc_url, "--model", "dense", "--data", str(tmp_path / "inputs.npz")]
    assert main([*argv, "--out", str(out), "--batch-size", "5"]) == 0
    printed = capsys.readouterr().out
    assert "probs: float32 [12, 4]" in printed and "argmax:" in printed and "accuracy:" in printed
    with np.load(out) as saved:
        assert saved["probs"].shape == (12, 4)


def test_infer_command_names_a_mismatched_input(
    server: TritonServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "inputs.npz", pixels=np.zeros((2, 8), np.float32))
    argv = ["infer", "--url", server.grpc_url, "--model", "dense", "--data", str(tmp_path / "inputs.npz")]
    assert main(argv) != 0
    assert "do not match the model inputs ['x']" in capsys.readouterr().err


def test_serve_command_starts_and_stops_on_sigterm(
    builds: dict[str, Path], tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(builds["dense"]), "--repo", str(repo), "--name", "dense", "--max-batch", "4"]) == 0
    ports = [str(free_port_factory()) for _ in range(3)]
    command = [sys.executable, "-m", "quantserve", "serve", "--repo", str(repo), "--grpc-port", ports[0]]
    command += ["--http-port", ports[1], "--metrics-port", ports[2], "--log-file", str(tmp_path / "triton.log")]
    env = {**os.environ, "QUANTSERVE_RUNTIME_DIR": str(tmp_path / "run"), "QUANTSERVE_LOG_DIR": str(tmp_path)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        lines = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        assert any(f"gRPC    127.0.0.1:{ports[0]}" in line for line in lines), lines
        assert any("model   dense (versions 1)" in line for line in lines), lines
        # the ports recorded while it serves, so loadtest/evaluate find the metrics port by the gRPC URL
        record = json.loads((tmp_path / "run" / f"serve-{ports[0]}.json").read_text())
        assert (record["pid"], record["grpc_port"], record["metrics_port"]) == (process.pid, *map(int, ports[::2]))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "stopped" in process.stdout.read()  # type: ignore[union-attr]
        assert not (tmp_path / "run" / f"serve-{ports[0]}.json").exists()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_runner_names_a_model_the_server_does_not_serve(server: TritonServer) -> None:
    from quantserve.errors import QuantserveError

    with pytest.raises(QuantserveError, match=r"serves no model 'nope' \(models: dense, seq_group, seq_pad\)"):
        TritonRunner(server.grpc_url, "nope").activate()
