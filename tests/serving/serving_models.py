"""Tiny ONNX models built with onnx.helper (no torch) and their build folders for the embedded target."""

from __future__ import annotations

import contextlib
import queue
import time
from pathlib import Path

import numpy as np

from quantserve.artifact import Manifest, TensorSpec


def write_dense_onnx(path: Path) -> None:
    """probs = softmax(x @ W + b): x [batch, 8] float32 → probs [batch, 4], and its argmax `label` [batch] int64
    (one value per sample: served as dims [1] reshaped to [])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.normal(size=(8, 4)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=-1, keepdims=0),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[weights, bias],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def write_sequence_onnx(path: Path) -> None:
    """tokens [batch, sequence, 4] → per-position `y` [batch, sequence, 3] and `pooled` = mean over sequence."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["tokens", "W"], ["y"]),
            helper.make_node("ReduceMean", ["y"], ["pooled"], axes=[1], keepdims=0),
        ],
        "sequence",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", "sequence", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", 3]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


DENSE_IO = (
    [TensorSpec("x", "float32", ("batch", 8))],
    [TensorSpec("probs", "float32", ("batch", 4)), TensorSpec("label", "int64", ("batch",))],
)
SEQUENCE_IO = (
    [TensorSpec("tokens", "float32", ("batch", "sequence", 4))],
    [TensorSpec("y", "float32", ("batch", "sequence", 3)), TensorSpec("pooled", "float32", ("batch", 3))],
)


def make_build_dir(directory: Path, kind: str = "dense") -> Path:
    """A folder as `quantserve optimize --target embedded` leaves it: model.onnx + manifest.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (write_dense_onnx if kind == "dense" else write_sequence_onnx)(directory / "model.onnx")
    inputs, outputs = DENSE_IO if kind == "dense" else SEQUENCE_IO
    Manifest(kind, inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return directory


def wait_for_line(lines: queue.Queue[str], text: str, seen: list[str], timeout_s: float = 180.0) -> None:
    """Read a process's output lines (queued by a reader thread) into `seen` until one is `text`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=1.0))
            if seen[-1] == text:
                return
    raise AssertionError(f"no line {text!r} within {timeout_s:.0f} s: {seen}")
