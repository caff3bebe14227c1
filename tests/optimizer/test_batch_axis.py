"""A batch axis fixed at 1 made dynamic through a Resize's `sizes`, and refusals of a batch axis Triton cannot
use saying the cause and the fix that fits the graph.

Each graph is built here with onnx.helper: a converted TFLite model's Resize with constant `sizes`
fixed at batch 1 (MediaPipe's palm detector), and a CTC recognizer's time-major logits
(captcha-whisperer's CRNN, [T, N, C]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.export import export_onnx
from optimizer.ort_failure import ort_reason, trim
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.source import load_source
from optimizer.speed import SpeedSettings
from quantserve.errors import QuantserveError


def _save(path: Path, nodes: list[onnx.NodeProto], x: list[object], y: list[object], inits: list) -> Path:  # type: ignore[type-arg]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _upsampled_by_sizes(path: Path, mode: str = "linear", x: list[object] | None = None) -> Path:
    """Conv then a Resize to the constant `sizes` [1, 2, 8, 8], as tflite2onnx writes RESIZE_BILINEAR (from 4 × 4
    unless `x` says otherwise)."""
    weight = np.random.default_rng(0).standard_normal((2, 3, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(np.array([1, 2, 8, 8], np.int64), "sizes")]
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["y"], name="up/ResizeBilinear", mode=mode),
    ]
    return _save(path, nodes, x or [1, 3, 4, 4], [1, 2, 8, 8], inits)


def _rows_as_alone(served: Path, published: Path, rows: np.ndarray) -> bool:
    """Whether `served` answers `rows` at once as `published` answers each row alone."""
    import onnxruntime as ort

    together = ort.InferenceSession(str(served), providers=["CPUExecutionProvider"]).run(None, {"x": rows})[0]
    alone = ort.InferenceSession(str(published), providers=["CPUExecutionProvider"])
    want = np.concatenate([alone.run(None, {"x": rows[i : i + 1]})[0] for i in range(len(rows))])
    return together.shape == want.shape and bool(np.allclose(together, want, rtol=1e-5, atol=1e-6))


@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_a_resize_with_sizes_fixing_the_batch_takes_the_equal_scales(tmp_path: Path, mode: str) -> None:
    """Refused with advice to give it `scales` (a tester did so by hand on MediaPipe's palm detector: outputs
    bit-identical); now done here, said in the export record, and served batched."""
    path = _upsampled_by_sizes(tmp_path / "palm.onnx", mode)
    exported = export_onnx(load_source(path), tmp_path / "out.onnx")
    record = exported.manifest.stages[0]["batch_axis_made_dynamic"]
    assert record["resize_sizes_given_as_scales"] == ["up/ResizeBilinear"]
    resize = next(n for n in onnx.load(str(exported.path)).graph.node if n.op_type == "Resize")
    assert list(resize.input)[3:] in ([], [""])
    rows = np.random.default_rng(2).standard_normal((8, 3, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=rows)
    options = OptimizeOptions(
        path, tmp_path / "calib.npz", "fp32", "embedded", tmp_path / "built", speed=SpeedSettings(enabled=False)
    )
    served = optimize(options).path
    assert _rows_as_alone(served, path, rows[:2]) and _rows_as_alone(served, path, rows)


def test_a_resize_with_sizes_fixing_the_batch_is_said_with_its_message_and_scales(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The refusal ended "… Name:'…ResizeBilinear' Status Message); re-export it …" (ORT's cause cut off, advice
    a converted model cannot follow) after ORT's own red multi-line error log on stderr. From 3 × 3 to 8 × 8 the
    scales (8/3) are not exact in float32: not written, still refused."""
    path = _upsampled_by_sizes(tmp_path / "palm.onnx", x=[1, 3, 3, 3])
    with pytest.raises(QuantserveError) as refused:
        export_onnx(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value) == (
        f"{path}: input 'x' has a fixed batch axis (1) and the graph depends on it (2 rows do not run: Resize node "
        "'up/ResizeBilinear': 'Linear' mode only supports: 2-D inputs or 3-D inputs ('Bilinear', 'Trilinear') or "
        "4-D inputs with the corresponding outermost 2 scale values being 1 or the corresponding outermost and "
        "innermost scale values being 1 or 5-D inputs with the corresponding outermost 2 scale values being 1in "
        "the Resize operator); that Resize takes its output size from the constant `sizes` [1, 2, 8, 8], batch 1 "
        "included (as converters such as tflite2onnx write it; re-exporting with a dynamic batch axis keeps it): "
        "give it `scales` [1, 1, 2.66667, 2.66667] instead of `sizes` so it resizes any number of rows; or, to serve "
        "it as published without editing the graph, build it with --unbatched (batch 1: Triton serves it with "
        "max_batch_size 0, one request at a time)"
    )
    out, err = capfd.readouterr()
    assert "onnxruntime" not in out + err and "Resize" not in out + err
    assert not (tmp_path / "out.onnx").exists()


def test_a_resize_with_sizes_fixing_the_batch_that_runs_is_named_by_the_same_advice(tmp_path: Path) -> None:
    """A 'nearest' Resize does not fail: it returns 1 row for 2, and the Resize is named as the cause (its input's
    height and width not known, no scales are written)."""
    path = _upsampled_by_sizes(tmp_path / "nearest.onnx", mode="nearest", x=[1, 3, "h", "w"])
    with pytest.raises(QuantserveError) as refused:
        export_onnx(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value).endswith(
        "depends on it (with 2 rows output 'y' has shape [1, 2, 8, 8], with 1 row [1, 2, 8, 8]); Resize node "
        "'up/ResizeBilinear' takes its output size from the constant `sizes` [1, 2, 8, 8], batch 1 included (as "
        "converters such as tflite2onnx write it; re-exporting with a dynamic batch axis keeps it): give it "
        "`scales` (1 on the batch axis, output over input size on the others) instead of `sizes` so it resizes any "
        "number of rows; or, to serve it as published without editing the graph, build it with --unbatched (batch "
        "1: Triton serves it with max_batch_size 0, one request at a time)"
    )


def test_a_time_major_output_is_told_to_put_its_rows_first(tmp_path: Path) -> None:
    """[T, N, C] logits were refused with advice about per-model constants and Squeeze."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "W")
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["t", "W"], ["y"]),
    ]
    path = _save(tmp_path / "crnn.onnx", nodes, ["N", 5, 4], [5, "N", 3], [weight])
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).standard_normal((32, 5, 4)).astype(np.float32))
    options = OptimizeOptions(
        path, tmp_path / "calib.npz", "fp32", "embedded", tmp_path / "out", speed=SpeedSettings(enabled=False)
    )
    with pytest.raises(QuantserveError) as refused:
        optimize(options)
    assert str(refused.value) == (
        f"{path}: output 'y' has shape [5, 8, 3] for 8 input rows: its rows are along axis 1 (as a time-major "
        "output's are, e.g. a CTC recognizer's logits [T, N, C]), but Triton batches requests and splits responses "
        "along axis 0; add a Transpose with perm [1, 0, 2] at the end of the graph, so the output is [N, 5, 3], or "
        "re-export the model batch-first"
    )
    assert not (tmp_path / "out").exists()


def test_ort_failures_keep_their_message_less_the_source_location_and_trim_outside_parentheses() -> None:
    failed = RuntimeError(
        "[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running Reshape node. Name:'baked' "
        "Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:91 "
        "onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, "
        "bool) input_shape_size == requested_shape_size was false. The input tensor cannot be reshaped to the "
        "requested shape. Input shape:{8,40,4}, requested shape:{8,30,4}\n"
    )
    assert ort_reason(failed) == (
        "Reshape node 'baked': input_shape_size == requested_shape_size was false. The input tensor cannot be "
        "reshaped to the requested shape. Input shape:{8,40,4}, requested shape:{8,30,4}"
    )
    assert trim("one two (three four five) six", 20) == "one two …"


def test_a_detector_with_nms_inside_is_told_what_to_export_instead(tmp_path: Path) -> None:
    """An end-to-end detector's NonMaxSuppression lists the boxes kept over all the rows sent together ([K, 3]):
    it was refused with advice about per-model constants and Squeeze, which fits nothing in such a graph."""
    limits = [
        numpy_helper.from_array(np.array([3], np.int64), "keep"),
        numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
        numpy_helper.from_array(np.array([0.1], np.float32), "floor"),
    ]
    nodes = [
        helper.make_node("Slice", ["x", "s0", "e0", "a0"], ["boxes"]),
        helper.make_node("Slice", ["x", "s1", "e1", "a0"], ["score_col"]),
        helper.make_node("Transpose", ["score_col"], ["scores"], perm=[0, 2, 1]),
        helper.make_node("NonMaxSuppression", ["boxes", "scores", "keep", "iou", "floor"], ["picked"]),
        helper.make_node("Cast", ["picked"], ["y"], to=TensorProto.FLOAT),
    ]
    consts = [
        numpy_helper.from_array(np.array([0], np.int64), "s0"),
        numpy_helper.from_array(np.array([4], np.int64), "e0"),
        numpy_helper.from_array(np.array([4], np.int64), "s1"),
        numpy_helper.from_array(np.array([5], np.int64), "e1"),
        numpy_helper.from_array(np.array([2], np.int64), "a0"),
    ]
    path = _save(tmp_path / "e2e.onnx", nodes, ["N", 8, 5], ["K", 3], consts + limits)
    boxes = np.random.default_rng(1).uniform(0, 1, (32, 8, 5)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=boxes)
    options = OptimizeOptions(
        path, tmp_path / "calib.npz", "fp32", "embedded", tmp_path / "out", speed=SpeedSettings(enabled=False)
    )
    with pytest.raises(QuantserveError, match=r"output 'y' has shape \[\d+, 3\] for 8 input rows") as refused:
        optimize(options)
    assert "the graph selects boxes with NonMaxSuppression" in str(refused.value)
    assert "export the model without NMS" in str(refused.value) and not (tmp_path / "out").exists()
