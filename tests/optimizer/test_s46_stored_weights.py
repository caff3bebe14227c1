"""Weights stored as INT8 and dequantized at every run are folded back to the FP32 the graph computes with (session
46: OpenCV's SFace, 29 DequantizeLinear of initializers alone, was refused as "already quantized … give the FP32
original", though that model is in the file; folded, it answered within 3e-6 and shipped INT8 at cosine 0.992)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from optimizer.stored_weights import drop_unread_inputs, fold_stored_weights
from quantserve.artifact import Manifest
from quantserve.cli import main


def _int8_stored(path: Path) -> Path:
    """y = x @ DequantizeLinear(w_q, scale per column): weight storage, FP32 compute; plus an input nothing reads,
    as SFace's converter left its weights' FP32 names."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.integers(-127, 128, (8, 5)).astype(np.int8), "w_q"),
        numpy_helper.from_array(rng.uniform(0.01, 0.05, 5).astype(np.float32), "w_scale"),
    ]
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w"], axis=1),
        helper.make_node("MatMul", ["x", "w"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    left = helper.make_tensor_value_info("w_fp32", TensorProto.FLOAT, [8, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 5])
    graph = helper.make_graph(nodes, "stored", [x, left], [y], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_weight_storage_folds_to_the_values_it_computes(tmp_path: Path) -> None:
    model = onnx.load(str(_int8_stored(tmp_path / "m.onnx")))
    assert fold_stored_weights(model) == 1
    assert drop_unread_inputs(model) == ["w_fp32"]
    assert [n.op_type for n in model.graph.node] == ["MatMul"]
    (w,) = [numpy_helper.to_array(t) for t in model.graph.initializer]
    stored = onnx.load(str(tmp_path / "m.onnx")).graph.initializer
    q, scale = (numpy_helper.to_array(t) for t in stored)
    np.testing.assert_array_equal(w, q.astype(np.float32) * scale)


def test_optimize_builds_it_and_answers_as_the_published_file(tmp_path: Path) -> None:
    source = _int8_stored(tmp_path / "m.onnx")
    x = np.random.default_rng(1).standard_normal((40, 8)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    out = tmp_path / "b"
    argv = ["optimize", str(source), "--calib", str(tmp_path / "d.npz"), "--precision", "fp32", "--out", str(out)]
    assert main(argv) == 0  # refused before: "the model is already quantized (1 DequantizeLinear)"
    record = Manifest.load(out).stages[0]["int8_stored_weights_folded"]
    assert record == {"weights_folded": 1, "unread_inputs_dropped": ["w_fp32"]}
    # the graph's own math, as ONNX defines it (ONNX Runtime's optimizer turns DequantizeLinear → MatMul into a
    # dynamically quantized MatMul, which rounds x too)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    feeds = {"x": x, "w_fp32": np.zeros((8, 5), np.float32)}
    published = ort.InferenceSession(str(source), options).run(None, feeds)[0]
    built = ort.InferenceSession(str(out / "model.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(built, published, rtol=1e-5, atol=1e-5)
