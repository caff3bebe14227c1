"""GRU and RNN multiply-adds count in the INT8 share: an encoder whose two GRUs stayed FP32 beside one INT8 Gemm
read "100% of MACs in INT8" (65 K of ~23.6 M multiply-adds were INT8: 0.3 %)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.compute_share import compute_macs, int8_compute_share
from optimizer.speed_verdict import sliver_reason

GATES = {"GRU": 3, "RNN": 1}


def _recurrent_then_gemm(path: Path, op: str, dequantized_head: bool = False) -> Path:
    """x (N, T, 8) → time-major → `op` (hidden 16) → its last state (1, N, 16) → (N, 16) → Gemm (16 → 4)."""
    rng = np.random.default_rng(0)
    weights = {
        "W": rng.normal(size=(1, GATES[op] * 16, 8)).astype(np.float32),
        "R": rng.normal(size=(1, GATES[op] * 16, 16)).astype(np.float32),
    }
    head = "V"
    nodes = [
        helper.make_node("Transpose", ["x"], ["x_t"], name="time_major", perm=[1, 0, 2]),
        helper.make_node(op, ["x_t", "W", "R"], ["", "h"], name="recurrent", hidden_size=16),
        helper.make_node("Transpose", ["h"], ["h_t"], name="batch_major", perm=[1, 0, 2]),
        helper.make_node("Flatten", ["h_t"], ["h_flat"], name="flatten"),
    ]
    if dequantized_head:  # what static Q/DQ makes of the Gemm: its weight read through a DequantizeLinear
        weights.update(V_q=np.ones((16, 4), np.int8), V_scale=np.float32(0.1), V_zero=np.int8(0))
        nodes.append(helper.make_node("DequantizeLinear", ["V_q", "V_scale", "V_zero"], ["V_dq"], name="dq"))
        head = "V_dq"
    else:
        weights["V"] = rng.normal(size=(16, 4)).astype(np.float32)
    nodes.append(helper.make_node("Gemm", ["h_flat", head], ["y"], name="head"))
    graph = helper.make_graph(
        nodes,
        "recurrent_head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.asarray(array), name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("op", ["GRU", "RNN"])
def test_a_recurrent_layer_counts_its_gates_over_the_sequence(tmp_path: Path, op: str) -> None:
    path = _recurrent_then_gemm(tmp_path / "fp32.onnx", op)
    macs = compute_macs(onnx.load(str(path)), path, {"x": np.ones((1, 20, 8), np.float32)})
    # 20 steps × gates × 16 hidden × (8 inputs + 16 hidden); the Gemm: 16 × 4
    assert macs == {"recurrent": 20 * GATES[op] * 16 * (8 + 16), "head": 64}


def test_a_gru_left_fp32_beside_an_int8_gemm_is_a_sliver_named_for_the_gru(tmp_path: Path) -> None:
    fp32 = _recurrent_then_gemm(tmp_path / "fp32.onnx", "GRU")
    int8 = _recurrent_then_gemm(tmp_path / "int8.onnx", "GRU", dequantized_head=True)
    share, kept = int8_compute_share(fp32, int8, {"x": np.ones((3, 20, 8), np.float32)})
    assert share == pytest.approx(64 / (20 * 3 * 16 * 24 + 64)) and kept == {"GRU": 1}
    assert sliver_reason(share, kept) == (
        "only 0.28 % of multiply-adds are INT8 (GRU ×1 stays FP32: ONNX Runtime has no INT8 GRU kernel)"
    )
