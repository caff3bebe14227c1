"""The INT8 search's speed record counts the samples it timed as verification's does (`batch_size`).

Its `batch` read `batch_rows` of the timing batch, rows to slice: 0 for an --unbatched model of rank-0 inputs alone
(one sample a request, `quantserve.runner.request_rows`), and a whole request's frames (axis 0 of a (T, F) input)
for one whose data holds whole samples, where verification says 1 (key_cnn's timing once read "batch 100").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_int8_search import FAST, VNNI

from optimizer.drift_budget import DriftBudget
from optimizer.export import manifest_from_onnx
from optimizer.int8_search import SearchInt8
from optimizer.int8_verdict import timed_samples
from quantserve.artifact import Artifact
from quantserve.data import RequestForm, TensorData

FRAMES = 10


def mlp_of(path: Path, shape: list[int]) -> Artifact:
    """x (`shape`: [] a scalar, or [FRAMES, 1] a sample's frames) → Reshape (-1, 1) → MatMul 16 → Relu → MatMul 4."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([-1, 1], np.int64), "shape"),
        numpy_helper.from_array(rng.standard_normal((1, 16)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal((16, 4)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["column"], name="column"),
        helper.make_node("MatMul", ["column", "w1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
    ]
    rows = FRAMES if shape else 1
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def whole_requests(count: int, seed: int, shape: tuple[int, ...]) -> TensorData:
    """`count` --unbatched requests, each `data[i]` whole (one axis more than the model's input)."""
    x = np.random.default_rng(seed).uniform(-1, 1, (count, *shape)).astype(np.float32)
    return TensorData({"x": x}, unbatched=True, requests=RequestForm(whole=True))


def test_samples_timed_are_requests_not_rows_to_slice() -> None:
    scalars = {"x": np.asarray(np.float32(0.5)), "k": np.asarray(np.int64(3))}
    assert timed_samples(scalars, whole=True) == timed_samples(scalars, whole=False) == 1
    assert timed_samples({"x": np.zeros((FRAMES, 1), np.float32)}, whole=True) == 1  # one sample's frames
    assert timed_samples({"x": np.zeros((8, 16), np.float32)}, whole=False) == 8


@pytest.mark.parametrize("shape", [(), (FRAMES, 1)], ids=["rank-0 input alone", "a sample's frames"])
def test_the_search_records_one_sample_timed_for_an_unbatched_request(tmp_path: Path, shape: tuple[int, ...]) -> None:
    art = mlp_of(tmp_path / "m.onnx", list(shape))
    loose = DriftBudget(min_channel_correlation=0.5, min_cosine_mean=0.5, min_cosine_worst=0.5)
    search = SearchInt8(
        whole_requests(64, 1, shape), whole_requests(64, 2, shape), budget=loose, search=FAST, cpu_flags=VNNI
    )
    speed = search(art, tmp_path / "int8.onnx").manifest.stages[-1]["speed"]
    assert speed["batch"] == 1, speed
