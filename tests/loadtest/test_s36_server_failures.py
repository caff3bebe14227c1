"""Requests the backend failed are no failures in Triton's counter (session 36, issue 11 leftover from session 34).

A load test whose requests ONNX Runtime failed (a Gather index out of range: "idx=1000 must be within the inclusive
range [-100,99]") showed Triton's `requests_failed` 0 beside the client's failures, with no word why: this
tritonserver counts a request its backend failed as a success (every `reason` of nv_inference_request_failure stays
0), and one refused before the model (wrong shape, data type, input name) in no counter. Now a note says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from loadtest.harness import run_pattern
from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData
from serving.server import TritonServer

ROWS = 100  # the table's rows: an index of ROWS or more fails in ONNX Runtime's Gather


def _gather_repo(root: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from serving.deploy import deploy

    build = root / "build"
    build.mkdir(parents=True)
    table = np.arange(ROWS * 8, dtype=np.float32).reshape(ROWS, 8)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "idx"], ["e"], axis=0), helper.make_node("Flatten", ["e"], ["y"])],
        "gather",
        [helper.make_tensor_value_info("idx", TensorProto.INT64, ["batch", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, build / "model.onnx")
    inputs, outputs = [TensorSpec("idx", "int64", ("batch", 1))], [TensorSpec("y", "float32", ("batch", 8))]
    Manifest("gather", inputs, outputs, precision="fp32", target="embedded", files={"model": "model.onnx"}).save(build)
    deploy(build, root / "repo", "gather", max_batch=8, instances=1)
    return root / "repo"


@pytest.mark.e2e
def test_backend_failures_triton_counts_as_successes_are_said(
    tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    server = triton_server_factory(_gather_repo(tmp_path))
    idx = np.array([[3], [ROWS * 10], [7], [ROWS * 10]], np.int64)  # half the requests out of range
    data = TensorData({"idx": idx}, np.zeros(len(idx), np.int64)).save(tmp_path / "load.npz")
    settings = LoadSettings(server.grpc_url, "gather", data, ClosedLoop(users=1), 3.0, metrics_url=server.metrics_url)
    (result,) = run_pattern(settings, tmp_path / "out").results
    assert result.failed_requests > 0 and result.requests > result.failed_requests
    assert result.server is not None
    assert result.server.requests_failed < result.failed_requests  # what this tritonserver counts
    notes = [n for n in result.notes() if "nv_inference_request_failure" in n]
    assert len(notes) == 1  # before: none; the breakdown's 0 stood alone
    assert f"read {result.server.requests_failed} over the window" in notes[0]
    assert f"the client had {result.failed_requests} requests fail" in notes[0]
