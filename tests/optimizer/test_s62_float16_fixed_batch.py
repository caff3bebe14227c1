"""A float16 source with a fixed batch of 1 is refused for --precision int8 as float16 before any batch-axis work.

Session 62 moved the already-quantized refusal ahead of the batch-axis work, but the float16 one (INT8 calibration
needs the FP32 model) still came after it, so a fixed batch the graph depends on was refused first with advice to
rewrite its Resize nodes, advice that leaves INT8 of that file impossible anyway. The graph here is
`test_s62_quantized_fixed_batch`'s in float16: Conv, then two Resize nodes to constant `sizes`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from unbatched_models import resize_model

from optimizer.export import ExportOnnx
from optimizer.source import load_source
from quantserve.errors import QuantserveError

FLOAT16_REFUSAL = (
    "the model computes in float16 (1 float16 weights): INT8 calibration needs the FP32 model; give the FP32 "
    "original, or build this one unquantized with --precision fp32 (its float16 weights are kept and recorded as fp16)"
)


def test_a_float16_fixed_batch_source_is_refused_as_float16_for_int8(tmp_path: Path) -> None:
    path = resize_model(tmp_path / "half.onnx", half=True)
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx(precision="int8")(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value) == f"{path}: {FLOAT16_REFUSAL}"
    assert not (tmp_path / "out.onnx").exists()


def test_fp16_of_a_float16_fixed_batch_source_still_gets_the_batch_advice(tmp_path: Path) -> None:
    """Only INT8 is refused for float16: --precision fp16 judges its batch axis as any other's."""
    path = resize_model(tmp_path / "half.onnx", half=True)
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx(precision="fp16")(load_source(path), tmp_path / "out.onnx")
    assert "fixed batch axis (1)" in str(refused.value)
