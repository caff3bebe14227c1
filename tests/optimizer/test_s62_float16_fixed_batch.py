"""A float16 source with a fixed batch of 1 is refused for --precision int8 as float16 before any batch-axis work.

Session 62 moved the already-quantized refusal ahead of the batch-axis work, but the float16 one (INT8 calibration
needs the FP32 model) still came after it, so a fixed batch the graph depends on was refused first with advice to
rewrite its Resize nodes, advice that leaves INT8 of that file impossible anyway. The graph here is
`test_s62_quantized_fixed_batch`'s in float16: Conv, then two Resize nodes to constant `sizes`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.export import ExportOnnx
from optimizer.source import load_source
from quantserve.errors import QuantserveError

FLOAT16_REFUSAL = (
    "the model computes in float16 (1 float16 weights): INT8 calibration needs the FP32 model; give the FP32 "
    "original, or build this one unquantized with --precision fp32 (its float16 weights are kept and recorded as fp16)"
)


def _half_two_resizes(path: Path) -> Path:
    """x [1, 3, 3, 3] float16 → Conv → Resize to the constant `sizes` [1, 2, 7, 7] → Resize to [1, 2, 8, 8]."""
    weight = np.random.default_rng(0).standard_normal((2, 3, 3, 3)).astype(np.float16)
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
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 3, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 2, 8, 8])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_float16_fixed_batch_source_is_refused_as_float16_for_int8(tmp_path: Path) -> None:
    path = _half_two_resizes(tmp_path / "half.onnx")
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx(precision="int8")(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value) == f"{path}: {FLOAT16_REFUSAL}"
    assert not (tmp_path / "out.onnx").exists()


def test_fp16_of_a_float16_fixed_batch_source_still_gets_the_batch_advice(tmp_path: Path) -> None:
    """Only INT8 is refused for float16: --precision fp16 judges its batch axis as any other's."""
    path = _half_two_resizes(tmp_path / "half.onnx")
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx(precision="fp16")(load_source(path), tmp_path / "out.onnx")
    assert "fixed batch axis (1)" in str(refused.value)
