"""Values NaN in FP32 and the compared model alike (a pitch decoder's 0/0 on silence) are no difference, and a
value NaN where FP32 is finite is no match (session 58): onnxslim's fusion was skipped for a model that matched
exactly ("differs … by up to 0"), the batch-dependence probe compared NaN as unequal to NaN, and "max_abs_diff 0"
stood beside 1097 INT8 NaN where FP32 was finite."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.export import manifest_from_onnx
from optimizer.fuse import FuseGraph
from optimizer.nan_outputs import nan_alike_difference
from optimizer.verify import same_answers
from quantserve.artifact import Artifact


def _ratio(path: Path) -> Artifact:
    """y = (x + 0) / x, NaN where x is 0: the Add gives onnxslim something to fold."""
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "zero"], ["shifted"], name="add"),
            helper.make_node("Div", ["shifted", "x"], ["y"], name="div"),
        ],
        "ratio",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [zero],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def _feeds() -> dict[str, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    x[1:3] = 0.0  # silence: 0/0 on these rows
    return {"x": x}


def test_fusion_of_a_model_answering_nan_alike_goes_on(tmp_path: Path) -> None:
    art = _ratio(tmp_path / "ratio.onnx")
    fused = FuseGraph(_feeds())(art, tmp_path / "fused.onnx")
    record = fused.manifest.stages[-1]
    assert "unfused" not in record, record["unfused"]["reason"]
    assert record["max_abs_diff"] == 0.0


def test_the_difference_counts_nan_alike_as_none_and_nan_in_one_as_unbounded() -> None:
    want = np.array([[1.0, np.nan], [np.inf, 2.0]])
    assert nan_alike_difference(want, want.copy()) == 0.0
    got = want.copy()
    got[1, 1] = np.nan
    assert nan_alike_difference(want, got) == math.inf


def test_rows_nan_at_the_same_places_alone_and_batched_are_the_same_answers() -> None:
    alone = np.array([[1.0, np.nan], [0.5, 0.25]], np.float32)
    assert same_answers(alone, alone.copy())
    moved = alone.copy()
    moved[0, 0] = np.nan
    assert not same_answers(alone, moved)


def test_a_nan_where_fp32_is_finite_is_no_zero_difference() -> None:
    ref = np.random.default_rng(1).standard_normal((16, 8)).astype(np.float32)
    ref[0, :2] = np.nan  # FP32's own NaN: left out
    got = ref.copy()
    got[3, 4] = np.nan  # INT8's NaN where FP32 is finite
    report = measure_drift({"cents": ref}, {"cents": got}, {"cents": "dense"}, DriftBudget())
    record = report.outputs["cents"]
    assert record["max_abs_diff"] == math.inf and record["mean_abs_diff"] == math.inf
    assert record["nonfinite_values"] == 1
    alike = measure_drift({"cents": ref}, {"cents": ref.copy()}, {"cents": "dense"}, DriftBudget())
    assert alike.outputs["cents"]["max_abs_diff"] == 0.0 and alike.outputs["cents"]["mean_abs_diff"] == 0.0


def _sigmoid_ratio(path: Path) -> Path:
    """y = s / s with s = Relu(x): NaN where x ≤ 0, as an INT8 Sigmoid rounded to 0 under a decoder's division."""
    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["s"], name="relu"),
            helper.make_node("Div", ["s", "s"], ["y"], name="decoder_div"),
        ],
        "sigmoid_ratio",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_nan_where_fp32_is_finite_names_the_node_making_it(tmp_path: Path) -> None:
    from optimizer.nan_outputs import nonfinite_origins
    from optimizer.onnxruntime_runner import OnnxRuntimeRunner

    x = np.abs(np.random.default_rng(2).standard_normal((8, 4))).astype(np.float32) + 0.1
    x[5, 1] = 0.0  # INT8's zero on row 5
    path = _sigmoid_ratio(tmp_path / "int8.onnx")
    with OnnxRuntimeRunner(path) as runner:
        got = runner.infer({"x": x})
    fp32 = {"y": np.ones((8, 4), np.float32)}
    report = measure_drift(fp32, got, {"y": "dense"}, DriftBudget())
    report = nonfinite_origins(report, path, fp32, got, {"x": x})
    line = next(v.line() for v in report.violations if v.metric == "nonfinite_values")
    assert line.startswith(
        "output 'y': 1 values NaN or infinite where FP32 is finite (first at node 'decoder_div' (Div)"
    )
    assert "on held-out row 5" in line and "epsilon" in line
    assert report.outputs["y"]["nonfinite_at"].startswith("first at node 'decoder_div'")
