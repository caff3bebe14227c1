"""A refusal for values INT8 answers NaN where FP32 is finite says, once, that FP32 itself answers NaN elsewhere in
that output (left out of every figure), session 58: a pitch model's 'cents' was NaN in FP32 on silence (0/0), and
the refusal named INT8's NaN alone; the build's note saying FP32's own is not printed with a refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.nan_outputs import nonfinite_origins
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.verify import drift_refusal

SAID = "FP32 itself answers NaN at 3 values of output 'cents' (left out of every figure)"


def _ratio(path: Path) -> Path:
    """cents = s / s with s = Relu(x): NaN where x ≤ 0."""
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["s"], name="relu"),
            helper.make_node("Div", ["s", "s"], ["cents"], name="decoder_div"),
        ],
        "ratio",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("cents", TensorProto.FLOAT, ["batch", 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _refusal(tmp_path: Path, fp32_nan: bool) -> tuple[str, dict[str, object]]:
    x = np.abs(np.random.default_rng(3).standard_normal((8, 4))).astype(np.float32) + 0.1
    x[5, 1] = 0.0  # INT8's 0/0, where FP32 is finite
    fp32 = np.ones((8, 4), np.float32)
    if fp32_nan:
        x[2, :3] = 0.0  # silence: NaN in both
        fp32[2, :3] = np.nan
    path = _ratio(tmp_path / "int8.onnx")
    with OnnxRuntimeRunner(path) as runner:
        got = runner.infer({"x": x})
    report = measure_drift({"cents": fp32}, got, {"cents": "dense"}, DriftBudget())
    report = nonfinite_origins(report, path, {"cents": fp32}, got, {"x": x})
    record = {"outputs": report.outputs, "violations": [v.to_dict() for v in report.violations]}
    return drift_refusal(record), record


def test_the_refusal_says_fp32s_own_nan_once(tmp_path: Path) -> None:
    line, _ = _refusal(tmp_path, fp32_nan=True)
    assert "1 values NaN or infinite where FP32 is finite (first at node 'decoder_div' (Div)" in line, line
    assert line.count(SAID) == 1 and line.count("FP32 itself") == 1, line


def test_nothing_said_where_fp32_is_finite(tmp_path: Path) -> None:
    line, record = _refusal(tmp_path, fp32_nan=False)
    assert "NaN or infinite where FP32 is finite" in line and "FP32 itself" not in line, line
    assert "fp32_nonfinite" not in record["outputs"]["cents"]  # type: ignore[index]
