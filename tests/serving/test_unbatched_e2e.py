"""End to end: `optimize --unbatched` builds deployed with the defaults, served by a real tritonserver, `infer`
over gRPC with its default request size, answers compared with ONNX Runtime run one request at a time.

Before: `infer` sent the whole file as one request ("Expected [1,32], got [40,32]"), and the embedded backend
cut a max_batch_size 0 model's outputs to the request's row count (NMS's 4 detections came back as 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from unbatched_builds import unbatched_build

from quantserve.cli import main
from serving.deploy import deploy
from serving.server import TritonServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable) -> tuple[TritonServer, Path]:
    root = tmp_path_factory.mktemp("unbatched")
    repo = root / "repo"
    for kind in ("gated", "nms"):
        deploy(unbatched_build(root, kind), repo, kind)  # max_batch_size 0 by default
    return triton_server_factory(repo), root


@pytest.mark.parametrize("kind", ["gated", "nms"])
def test_infer_answers_each_request_as_onnxruntime_does(served: tuple[TritonServer, Path], kind: str) -> None:
    import onnxruntime as ort

    server, root = served
    out = root / f"out_{kind}.npz"
    argv = ["infer", "--url", server.grpc_url, "--model", kind, "--data", str(root / f"{kind}.npz"), "--out", str(out)]
    assert main(argv) == 0
    session = ort.InferenceSession(str(root / f"build_{kind}" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.load(root / f"{kind}.npz")["x"]
    expected = np.concatenate([session.run(None, {"x": x[i : i + 1]})[0] for i in range(len(x))])
    got = next(iter(np.load(out).values()))
    assert got.shape == expected.shape and len(expected) >= len(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_evaluate_sends_the_one_row_requests_such_a_model_takes(served: tuple[TritonServer, Path]) -> None:
    """evaluate's default --batch-size 64 was refused by Triton: "Expected [1,32], got [40,32]"."""
    server, root = served
    argv = ["-q", "evaluate", "--url", server.grpc_url, "--models", "gated", "--reference", "gated"]
    assert main([*argv, "--data", str(root / "gated.npz"), "--out", str(root / "evaluated")]) == 0
    assert (root / "evaluated" / "accuracy.json").is_file()
