"""An FP32 model answering NaN on most rows is refused before any work, naming the node the NaN starts at (session
52): fastText's language identifier, exported with log(sigmoid) as Log(Sigmoid), answered NaN on 451 of 540 rows
(−inf × 0 in the next MatMul), and optimize blamed INT8 ("values NaN where FP32 is finite", try another --method)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.nan_outputs import nan_refusal
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.errors import QuantserveError


def _log_then_matmul(path: Path) -> Path:
    """y = Log(x) @ W: a 0 in x is −inf after the Log, and −inf × W's 0 is NaN."""
    weight = numpy_helper.from_array(np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32), "w")
    graph = helper.make_graph(
        [
            helper.make_node("Log", ["x"], ["logged"], name="log"),
            helper.make_node("MatMul", ["logged", "w"], ["y"], name="mm"),
        ],
        "nan",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _rows(zeros: int, rows: int = 64) -> np.ndarray:
    x = np.random.default_rng(0).uniform(0.5, 2.0, size=(rows, 4)).astype(np.float32)
    x[:zeros, 0] = 0.0  # these rows: −inf × 0 in the MatMul
    return x


def test_a_model_answering_nan_on_most_rows_is_refused_before_any_work(tmp_path: Path) -> None:
    model = _log_then_matmul(tmp_path / "nan.onnx")
    x = _rows(zeros=48)
    np.random.default_rng(1).shuffle(x)
    np.savez(tmp_path / "calib.npz", x=x)
    untimed = SpeedSettings(enabled=False)
    options = OptimizeOptions(model, tmp_path / "calib.npz", "int8", "embedded", tmp_path / "out", speed=untimed)
    with pytest.raises(QuantserveError) as caught:
        optimize(options)
    line = str(caught.value)
    assert "the FP32 model answers NaN in output 'y' on " in line and " rows checked (" in line
    assert "first at node 'mm' (MatMul), whose input 'logged' holds -inf" in line
    assert "the model or its export is at fault" in line
    assert not (tmp_path / "out").exists()


def test_nan_on_a_few_rows_is_left_to_the_figures_note() -> None:
    x = _rows(zeros=2, rows=8)
    with np.errstate(divide="ignore", invalid="ignore"):
        answers = [np.log(x) @ np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)]
    assert np.isnan(answers[0]).any()
    assert nan_refusal(Path("unused.onnx"), ["y"], answers, {"x": x}, "m") == ""
