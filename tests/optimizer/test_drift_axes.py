"""A rank-4 dense output whose channels lie on its last axis (NHWC, as CRAFT's (N, H/2, W/2, 2) region/affinity
maps): judged along axis 1 and the last, the worst counts, and the refusal says on which axis it lies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve import metrics
from quantserve.data import TensorData


def _nhwc_maps(path: Path, scales: tuple[float, float]) -> Path:
    """x (N, 16, 12, 2) → x · scales over the last axis: channel 0 the strong map, channel 1 a weak one."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "scales"], ["maps"])],
        "nhwc_maps",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, 12, 2])],
        [helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["N", 16, 12, 2])],
        [numpy_helper.from_array(np.array(scales, np.float32), "scales")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_collapsed_last_axis_channel_is_caught_and_its_axis_named(tmp_path: Path) -> None:
    reference = _nhwc_maps(tmp_path / "fp32.onnx", (1.0, 0.1))
    candidate = _nhwc_maps(tmp_path / "int8.onnx", (1.0, 0.0))  # the affinity map quantized to a constant 0
    data = TensorData({"x": np.random.default_rng(0).normal(size=(64, 16, 12, 2)).astype(np.float32)})
    verify = VerifyAgainstReference(reference, data, "maps.npz")
    expected, got = verify.outputs(reference)["maps"], verify.outputs(candidate)["maps"]
    assert np.nanmin(metrics.channel_correlations(expected, got, 1)) > 0.98  # the image rows see nothing wrong
    record = verify.measure(candidate)
    output = record["outputs"]["maps"]
    assert output["kind"] == "dense" and output["channel_axes"] == {"1": 16, "3": 2}
    assert (output["channel_worst_axis"], output["channel_worst"]) == (3, 1)
    assert record["holds"] is False
    assert {v["where"] for v in record["violations"]} == {"axis 3, entry 1"}
    assert drift_refusal(record).startswith(
        "INT8 misses the drift budget: output 'maps' (dense): worst channel correlation (axis 3, entry 1) 0 < budget "
        "0.98 (and 1 more: output 'maps' worst channel error (RMS / FP32 std) (axis 3, entry 1) 1)"
    )
