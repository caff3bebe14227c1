"""Tiny ONNX graphs and artifacts for tests (engine targets, profile), built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Artifact, Manifest, TensorSpec


def matmul_onnx(path: Path, qdq: bool = False) -> Path:
    """A tiny `x[batch,4] @ W + b` model; with `qdq`, x and W pass through Q/DQ pairs (explicit INT8)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")
    inits, nodes, x_name, w_name = [weight, bias], [], "x", "W"
    if qdq:
        inits += [
            numpy_helper.from_array(np.array(0.05, np.float32), "s"),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        for src in ("x", "W"):
            nodes += [
                helper.make_node("QuantizeLinear", [src, "s", "z"], [f"{src}_q"]),
                helper.make_node("DequantizeLinear", [f"{src}_q", "s", "z"], [f"{src}_dq"]),
            ]
        x_name, w_name = "x_dq", "W_dq"
    nodes += [helper.make_node("MatMul", [x_name, w_name], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def onnx_artifact(path: Path, precision: str) -> Artifact:
    manifest = Manifest(
        name="tiny",
        inputs=[TensorSpec("x", "float32", ("batch", 4))],
        outputs=[TensorSpec("y", "float32", ("batch", 3))],
        precision=precision,
        stages=[{"stage": "calibrate", "calibration_hash": "abc123"}] if precision == "int8" else [],
    )
    return Artifact(path, manifest)


def embedding_model(path: Path, graph_name: str = "embed") -> Path:
    """ids (batch, 3) int64 → a 100-entry embedding's rows: an id of 100 or more is out of its range."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [100, 4], np.zeros(400, np.float32).tolist())
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["rows"], name="/embed/Gather")],
        graph_name,
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 3])],
        [helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["batch", 3, 4])],
        [table],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path
