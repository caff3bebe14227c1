"""An --unbatched INT8 build whose answer length follows its values was timed on held-out request 1 alone, where
SLANet-plus INT8 stopped after 9 decoder steps and FP32 after 32: "1.20×" was mostly the shorter answer (the 3
requests of equal length gave 1.07×, below the 1.1 gate; probe 66I). The speed gate now times the first held-out
request whose answers have the same length in FP32 and the build; where none does, the speed record's note says the
figure was timed on answers of different lengths and includes the shorter one.

The models are built here: y = Slice(x as [N, 8, 1], axis 1, end=T), T = clip(int(max(x)), 1, CAP): the reference's
CAP 8, the "build"'s CAP 4, so a request whose max is 5 or more answers shorter in the build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.optimize_options import OptimizeOptions
from optimizer.speed import SpeedRecord
from optimizer.targets import get_target
from optimizer.verify_and_time import VerifyAndTime
from quantserve.data import TensorData


def _capped(path: Path, cap: int) -> Path:
    """y [N, T, 1] = x's first T values, T = clip(int(max(x)), 1, cap)."""
    consts = {"one": np.array(1, np.int64), "cap": np.array(cap, np.int64), "ax0": np.array([0], np.int64)}
    consts |= {"zero": np.array([0], np.int64), "ax1": np.array([1], np.int64), "shape": np.array([-1, 8, 1])}
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["x3"]),
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("Clip", ["mi", "one", "cap"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Slice", ["x3", "zero", "n1", "ax1"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "T", 1])
    inits = [numpy_helper.from_array(value.astype(np.int64), name) for name, value in consts.items()]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


class _Gate(VerifyAndTime):
    """The speed gate's state as `optimizer.pipeline.OptimizeJob` holds it: held-out requests of these maxima, INT8
    --unbatched, kept failing (the lengths' miss is not what is tested)."""

    def __init__(self, maxima: list[float]) -> None:
        x = np.full((len(maxima), 8), 0.5, np.float32)
        x[:, 0] = maxima
        self.held_out = TensorData({"x": x}, unbatched=True)
        self.options = OptimizeOptions("m.onnx", None, "int8", "onnxruntime", "out", keep_failing=True, unbatched=True)
        self.engine = get_target("onnxruntime")
        self.held_out_source = "held-out"
        self.user_metric = None
        self.state_pairs = []


def _timed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, maxima: list[float]) -> tuple[dict[str, Any], list]:
    timed: list[dict[str, np.ndarray]] = []

    def fake_speed(fp32: Path, int8: Path, batch: dict[str, np.ndarray], *args: Any) -> SpeedRecord:
        timed.append(batch)
        return SpeedRecord(fp32_ms=2.0, int8_ms=1.0, speedup=2.0, min_speedup=1.1, batch_size=1, threads=1, cpu="c")

    monkeypatch.setattr("optimizer.verify_and_time.compare_speed", fake_speed)
    reference, build = _capped(tmp_path / "fp32.onnx", 8), _capped(tmp_path / "int8.onnx", 4)
    record = _Gate(maxima)._verify(reference, build, [])
    return record, timed


def test_timed_on_the_first_request_whose_lengths_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, timed = _timed(tmp_path, monkeypatch, [7.5, 6.5, 3.5, 2.5])  # requests 1-2: T 7 and 6 vs 4; 3: 3 and 3
    [batch] = timed
    assert float(batch["x"].max()) == 3.5, batch  # request 3, not request 1
    note = record["speed"]["batch_note"]
    assert "request 3" in note and "different lengths" not in note, note


def test_timed_on_different_lengths_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, timed = _timed(tmp_path, monkeypatch, [7.5, 6.5, 5.5, 7.5])  # no request keeps FP32's length
    [batch] = timed
    assert float(batch["x"].max()) == 7.5, batch
    note = record["speed"]["batch_note"]
    assert "timed on answers of different lengths" in note, note
    assert "7 in FP32 vs 4 in the build" in note and "shorter answer" in note, note
