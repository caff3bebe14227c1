"""An already-quantized source with a fixed batch of 1 is refused as quantized before any batch-axis work, and the
fixed-batch refusal counts the Resize nodes with constant `sizes` and names --unbatched.

A probe fed imgly's INT8 ISNet (ORT `quantize_dynamic` output: ConvInteger + DynamicQuantizeLinear, input fixed
at 1x3x1024x1024, 39 Resize nodes to constant `sizes`) to `optimize --precision int8`: it was told to rewrite
'/stage1/Resize' to `scales`; only with --unbatched did it learn that INT8 of that file is impossible anyway. The
graph here is its shape in small: Conv, then two Resize nodes in a row to constant `sizes` whose scales (7/3, 8/7) are
not exact in float32, so the batch cannot be freed; and `quantize_dynamic` of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from unbatched_models import resize_model

from optimizer.export import ExportOnnx
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.source import load_source
from quantserve.errors import QuantserveError

SIZES_ADVICE = (
    "2 Resize nodes take their output size from constant `sizes`, batch 1 included (as converters such as "
    "tflite2onnx write it; re-exporting with a dynamic batch axis keeps it), e.g. 'up/first' [1, 2, 7, 7]: give "
    "each `scales` instead of `sizes` ('up/first': [1, 1, 2.33333, 2.33333]) so they resize any number of rows; "
    "or, to serve it as published without editing the graph, build it with --unbatched (batch 1: Triton serves it "
    "with max_batch_size 0, one request at a time)"
)
ALREADY_QUANTIZED = (
    "the model is already quantized (1 DynamicQuantizeLinear, 1 ConvInteger): --precision {precision} needs the FP32 "
    "model to quantize and to measure drift and speed against; give the FP32 original, or serve this one with "
    "--precision fp32"
)


def _quantized(path: Path) -> Path:
    """`quantize_dynamic` of `_two_resizes`: ConvInteger behind a DynamicQuantizeLinear, as imgly's ISNet."""
    from onnxruntime.quantization import quantize_dynamic

    source = resize_model(path.with_name("fp32.onnx"))
    quantize_dynamic(str(source), str(path))
    return path


def test_the_fixed_batch_refusal_counts_the_resizes_and_names_unbatched(tmp_path: Path) -> None:
    path = resize_model(tmp_path / "two.onnx")
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx()(load_source(path), tmp_path / "out.onnx")
    said = str(refused.value)
    assert said.startswith(f"{path}: input 'x' has a fixed batch axis (1) and the graph depends on it (2 rows do not")
    assert said.endswith(f"); {SIZES_ADVICE}")


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_an_already_quantized_source_is_refused_as_such_before_its_batch_axis(tmp_path: Path, precision: str) -> None:
    path = _quantized(tmp_path / "small.onnx")
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx(precision=precision)(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value) == f"{path}: {ALREADY_QUANTIZED.format(precision=precision)}"
    assert not (tmp_path / "out.onnx").exists()


def test_optimize_int8_of_a_quantized_fixed_batch_source_says_it_is_quantized(tmp_path: Path) -> None:
    path = _quantized(tmp_path / "small.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).standard_normal((8, 3, 3, 3)).astype(np.float32))
    stages: list[str] = []
    options = OptimizeOptions(path, tmp_path / "calib.npz", "int8", "embedded", tmp_path / "b", on_stage=stages.append)
    with pytest.raises(QuantserveError) as refused:
        optimize(options)
    assert str(refused.value) == f"{path}: {ALREADY_QUANTIZED.format(precision='int8')}"
    assert "fuse" not in stages and not (tmp_path / "b").exists()


def test_fp32_of_a_quantized_fixed_batch_source_still_gets_the_batch_advice(tmp_path: Path) -> None:
    """--precision fp32 serves a quantized file as it is: its batch axis is judged as any other's."""
    path = _quantized(tmp_path / "small.onnx")
    with pytest.raises(QuantserveError) as refused:
        ExportOnnx(precision="fp32")(load_source(path), tmp_path / "out.onnx")
    assert "fixed batch axis (1)" in str(refused.value) and str(refused.value).endswith(SIZES_ADVICE)
