"""A pitch tracker's shape in five ONNX nodes, for the tests of a value output gated by a confidence beside it:
value = 100·input + 200 and confidence = sigmoid(4·input) per frame (sessions 59 and 60's recorded gates and label
threshold)."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

FRAMES = 32


def pitch_model(path: Path) -> Path:
    """input (N, T) -> value = 100·input + 200, confidence = sigmoid(4·input)."""
    nodes = [
        helper.make_node("Mul", ["input", "hundred"], ["scaled"]),
        helper.make_node("Add", ["scaled", "base"], ["value"]),
        helper.make_node("Mul", ["input", "four"], ["steep"]),
        helper.make_node("Sigmoid", ["steep"], ["confidence"]),
    ]
    inits = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [value])
        for name, value in (("hundred", 100.0), ("base", 200.0), ("four", 4.0))
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", FRAMES]) for n in ("value", "confidence")]
    graph = helper.make_graph(
        nodes, "pitch", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", FRAMES])], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
