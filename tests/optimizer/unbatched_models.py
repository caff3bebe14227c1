"""Tiny ONNX models that cannot take a batch, for the `optimize --unbatched` tests (optimizer and serving).

`gated_model`: batch fixed at 1, an `If` on the ReduceMax of the whole hidden tensor picks one of two heads
(openWakeWord's hey_jarvis gates its second stage on one sample's score so). `nms_model`: NonMaxSuppression
inside the graph, its [K, 3] output's K set by the scores. `resize_model`: Resize nodes to constant `sizes`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTH, HIDDEN, CLASSES = 32, 64, 8


def gated_model(path: Path, batch: int | str = 1) -> Path:
    """x [batch, WIDTH] → MatMul → Relu → h; y = h @ (A if max(h) > 1.5 else B): [batch, CLASSES]."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32), name)
        for name, shape in (("w1", (WIDTH, HIDDEN)), ("wa", (HIDDEN, CLASSES)), ("wb", (HIDDEN, CLASSES)))
    ]
    threshold = numpy_helper.from_array(np.array(1.5, np.float32), "threshold")
    branches = [
        helper.make_graph(
            [helper.make_node("MatMul", ["h", weight], [f"y_{weight}"])],
            f"head_{weight}",
            [],
            [helper.make_tensor_value_info(f"y_{weight}", TensorProto.FLOAT, [batch, CLASSES])],
        )
        for weight in ("wa", "wb")
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["h"]),
        helper.make_node("ReduceMax", ["h"], ["peak"], keepdims=0),
        helper.make_node("Greater", ["peak", "threshold"], ["gate"]),
        helper.make_node("If", ["gate"], ["y"], then_branch=branches[0], else_branch=branches[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "gated",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, CLASSES])],
        [*weights, threshold],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def gated_data(path: Path, rows: int, seed: int = 0) -> Path:
    """`rows` requests for `gated_model`, scaled row by row so both heads are taken."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, WIDTH)) * rng.uniform(0.3, 1.5, (rows, 1))
    np.savez(path, x=x.astype(np.float32))
    return path


def nms_model(path: Path, boxes: int = 8) -> Path:
    """x [1, boxes, 5] (x1, y1, x2, y2, score) → a MatMul head (identity weights: a detector's compute, so INT8 has
    something to quantize) → NonMaxSuppression over scores above 0.5 → selected [K, 3]."""
    constants = {
        "max_out": np.array([boxes], np.int64),
        "iou": np.array([0.5], np.float32),
        "score_min": np.array([0.5], np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["x", "head"], ["xh"]),
        helper.make_node("Slice", ["xh", "start_b", "end_b", "axis"], ["boxes"]),
        helper.make_node("Slice", ["xh", "start_s", "end_s", "axis"], ["column"]),
        helper.make_node("Transpose", ["column"], ["scores"], perm=[0, 2, 1]),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_min"], ["selected"]),
    ]
    slices = {"start_b": [0], "end_b": [4], "start_s": [4], "end_s": [5], "axis": [2]}
    initializers = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in slices.items()]
    initializers += [numpy_helper.from_array(constants[k], k) for k in ("max_out", "iou", "score_min")]
    initializers.append(numpy_helper.from_array(np.eye(5, dtype=np.float32), "head"))
    graph = helper.make_graph(
        nodes,
        "nms",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, boxes, 5])],
        [helper.make_tensor_value_info("selected", TensorProto.INT64, ["kept", 3])],
        initializers,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def nms_data(path: Path, rows: int, boxes: int = 8) -> Path:
    """`rows` images of `boxes` random boxes each, scores uniform in [0, 1] (so K varies)."""
    rng = np.random.default_rng(1)
    corner = rng.uniform(0, 10, (rows, boxes, 2))
    size = rng.uniform(1, 4, (rows, boxes, 2))
    scores = rng.uniform(0, 1, (rows, boxes, 1))
    np.savez(path, x=np.concatenate([corner, corner + size, scores], axis=2).astype(np.float32))
    return path


def resize_model(path: Path, half: bool = False) -> Path:
    """x [1, 3, 3, 3] → Conv → Resize to the constant `sizes` [1, 2, 7, 7] → Resize to [1, 2, 8, 8] (float16 where
    `half`): scales 7/3 and 8/7 are not exact in float32, so the batch cannot be freed (imgly's ISNet in small)."""
    weight = np.random.default_rng(0).standard_normal((2, 3, 3, 3)).astype(np.float16 if half else np.float32)
    elem = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    inits = [
        numpy_helper.from_array(weight, "W"),
        numpy_helper.from_array(np.array([1, 2, 7, 7], np.int64), "sizes7"),
        numpy_helper.from_array(np.array([1, 2, 8, 8], np.int64), "sizes8"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c", "", "", "sizes7"], ["r"], name="up/first", mode="linear"),
        helper.make_node("Resize", ["r", "", "", "sizes8"], ["y"], name="up/second", mode="linear"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", elem, [1, 3, 3, 3])],
        [helper.make_tensor_value_info("y", elem, [1, 2, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
