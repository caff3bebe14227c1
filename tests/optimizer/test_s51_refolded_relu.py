"""A node kept FP32 after a Relu that ORT folded into a Q range reads the float tensor with the Relu put back
(optimizer.fp32_restore.keep_fp32; session 51).

Before, such a node kept its quantized input: with every MatMul of an MLP kept FP32 its output still drifted half as
far as the whole INT8 model's, so the mixed-precision search could not win back what a kept group should.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from test_int8_search import mlp

from optimizer.calibrate import CalibrateInt8
from optimizer.fp32_restore import keep_fp32
from optimizer.transformer import run_model
from quantserve.data import TensorData


def test_every_node_kept_fp32_after_folded_relus_reads_float_values(tmp_path: Path) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    calib = TensorData({"x": np.random.default_rng(6).standard_normal((64, 16)).astype(np.float32)})
    int8 = CalibrateInt8(calib)(art, tmp_path / "q.onnx")
    assert "Relu" not in {n.op_type for n in onnx.load(str(int8.path)).graph.node}  # folded into the Q ranges
    kept = keep_fp32(onnx.load(str(int8.path)), onnx.load(str(art.path)), ["fc0", "fc1", "fc2"])
    onnx.checker.check_model(kept)
    producers = {out: n for n in kept.graph.node for out in n.output}
    for name in ("fc1", "fc2"):
        node = next(n for n in kept.graph.node if n.name == name)
        relu = producers[node.input[0]]
        assert relu.op_type == "Relu" and producers[relu.input[0]].op_type == "MatMul", (name, relu)
    onnx.save(kept, str(tmp_path / "k.onnx"))
    x = {"x": calib.arrays["x"][:16]}
    want = run_model(art.path, x)["y"]
    error_int8 = np.abs(run_model(int8.path, x)["y"] - want).max()
    error_kept = np.abs(run_model(tmp_path / "k.onnx", x)["y"] - want).max()
    assert error_kept < error_int8 / 20, (error_kept, error_int8)


def test_only_fc1_kept_reads_fc0_s_relu_and_fc0_still_feeds_int8_readers(tmp_path: Path) -> None:
    art = mlp(tmp_path / "mlp.onnx")
    calib = TensorData({"x": np.random.default_rng(7).standard_normal((64, 16)).astype(np.float32)})
    int8 = CalibrateInt8(calib)(art, tmp_path / "q.onnx")
    kept = keep_fp32(onnx.load(str(int8.path)), onnx.load(str(art.path)), ["fc1"])
    onnx.checker.check_model(kept)
    fc1 = next(n for n in kept.graph.node if n.name == "fc1")
    assert fc1.input[0] == "a0_fp32" and fc1.input[1] == "w1"
    assert sum(n.op_type == "Relu" for n in kept.graph.node) == 1  # fc2 still reads a1 quantized: no Relu for it
