"""The INT8 search's speed figure: FP32 timed beside each candidate, not once at the start of the search."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import optimizer.int8_search as int8_search
from optimizer.export import manifest_from_onnx
from optimizer.int8_measure import SearchSettings
from optimizer.int8_search import SearchInt8
from optimizer.profile import ModelProfile
from quantserve.artifact import Artifact
from quantserve.data import TensorData

FAST = SearchSettings(max_search_s=600.0, max_probes=2, probe_samples=32, timing_repeats=1)
BUSY = 20.0  # the FP32 profile taken while other processes held the cores: 20× its time


def _convs(path: Path) -> Artifact:
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(16, c, 3, 3)).astype(np.float32), f"w{i}")
        for i, c in ((0, 3), (1, 16))
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], name="c0", pads=[1] * 4),
        helper.make_node("Relu", ["a"], ["r"], name="act"),
        helper.make_node("Conv", ["r", "w1"], ["y"], name="c1", pads=[1] * 4),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16, 32, 32])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


@pytest.mark.serial
def test_a_busy_fp32_profile_does_not_make_the_candidates_fast(tmp_path: Path, monkeypatch: Any) -> None:
    art = _convs(tmp_path / "convs.onnx")
    profile = int8_search.profile_model

    def busy_at_first(path: Path, *args: Any, **kwargs: Any) -> ModelProfile:
        measured = profile(path, *args, **kwargs)
        slow = Path(path) == art.path
        return dataclasses.replace(measured, run_ms=measured.run_ms * BUSY) if slow else measured

    monkeypatch.setattr(int8_search, "profile_model", busy_at_first)
    rng = np.random.default_rng(1)
    data = TensorData({"x": rng.normal(size=(64, 3, 32, 32)).astype(np.float32)})
    record = SearchInt8(data, data, search=FAST, keep_failing=True)(art, tmp_path / "int8.onnx").manifest.stages[-1]
    speeds = [c["speedup"] for c in record["candidates"]]
    assert speeds and max(speeds) < BUSY / 4, record["candidates"]  # INT8 of two small convs: ~0.5-3× FP32
    paired = record["speed"]
    assert paired["speedup"] == pytest.approx(paired["fp32_run_ms"] / paired["int8_run_ms"], rel=0.5)
