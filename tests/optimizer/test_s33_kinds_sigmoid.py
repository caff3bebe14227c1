"""An output a Sigmoid makes is per-label probabilities: a low-confidence 10-class sigmoid head without labels (scores
mostly 0.2-0.8, no class plainly off, none standing out) read `dense`, and a build changing the label sets of 2.75 %
of its rows at 0.5 passed on correlation. Read from the graph, it is judged by its label sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.output_kinds import infer_output_kinds
from optimizer.sigmoid_outputs import sigmoid_outputs


def _head(path: Path) -> Path:
    """x (N, 16) -> probs = Sigmoid(x·W - 0.3) (N, 10), reshaped on its way out; scores = 100·Sigmoid(x·W) (N, 10)."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["logits"]),
        helper.make_node("Sub", ["logits", "bias"], ["shifted"]),
        helper.make_node("Sigmoid", ["shifted"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["probs"]),
        helper.make_node("Sigmoid", ["logits"], ["q"]),
        helper.make_node("Mul", ["q", "hundred"], ["scores"]),
    ]
    rng = np.random.default_rng(33)
    weights = {
        "W": (rng.normal(0.0, 0.2, (16, 10))).astype(np.float32),
        "bias": np.full(10, 0.3, np.float32),
        "hundred": np.array(100.0, np.float32),
    }
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 10]) for n in ("probs", "scores")],
        [numpy_helper.from_array(v, k) for k, v in weights.items()]
        + [numpy_helper.from_array(np.array([-1, 10], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_sigmoids_low_confidence_scores_are_judged_by_their_label_sets(tmp_path: Path) -> None:
    model = _head(tmp_path / "head.onnx")
    assert sigmoid_outputs(model) == {"probs"}  # through a Reshape; scaled after it, no longer probabilities
    x = np.random.default_rng(1).normal(0.0, 1.0, (400, 16)).astype(np.float32)
    with OnnxRuntimeRunner(model) as runner:
        probs = runner.infer({"x": x})["probs"]
    assert np.mean((probs > 0.1) & (probs < 0.9)) > 0.95  # hardly a class plainly off or on
    got = (probs + np.random.default_rng(2).normal(0.0, 0.002, probs.shape)).astype(np.float32)
    near = np.abs(probs - 0.5)
    clear = np.flatnonzero(((near > 0.022) & (near < 0.035)).any(axis=1))[:8]  # past FP32's near-ties (left out)
    got[clear] = np.where((near[clear] > 0.022) & (near[clear] < 0.035), 1.0 - probs[clear], got[clear])
    changed = float(np.mean(((probs >= 0.5) != (got >= 0.5)).any(axis=1)))
    assert 0.015 < changed < 0.05, changed
    assert infer_output_kinds({"probs": probs}) == {"probs": "dense"}  # read off the values alone
    assert measure_drift({"probs": probs}, {"probs": got}, {"probs": "dense"}, DriftBudget()).holds
    kinds = infer_output_kinds({"probs": probs}, sigmoid=sigmoid_outputs(model))
    assert kinds == {"probs": "multilabel"}
    report = measure_drift({"probs": probs}, {"probs": got}, kinds, DriftBudget())
    assert not report.holds
    line = report.violations[0].line()
    assert line.startswith("output 'probs': label-set agreement (at --label-threshold 0.5; "), line
    assert "< budget 0.99" in line, line
    assert "if its columns are not labels (coordinates, scores), name --output-kind probs=dense" in line, line
    typed = infer_output_kinds({"probs": probs}, {"probs": "multilabel"}, sigmoid=sigmoid_outputs(model))
    line = measure_drift({"probs": probs}, {"probs": got}, typed, DriftBudget()).violations[0].line()
    assert "=dense" not in line, line  # typed by the user: no second guess


def test_a_sigmoids_other_readings_stand() -> None:
    """A one-hot-ish confident head reads as a classifier, a single score stays dense (its decisions judged there)."""
    rng = np.random.default_rng(4)
    confident = np.full((200, 5), 0.02, np.float32)
    confident[np.arange(200), rng.integers(0, 5, 200)] = 0.97
    single = rng.random((200, 1)).astype(np.float32)
    kinds = infer_output_kinds({"c": confident, "s": single}, sigmoid={"c", "s"})
    assert kinds == {"c": "classification", "s": "dense"}
