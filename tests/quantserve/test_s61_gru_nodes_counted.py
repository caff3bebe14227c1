"""optimize's calibrate row counts the GRU/RNN nodes that stay FP32 (session 61): sleepecg's sleep stager read "0.92%
of MACs in INT8, 3 nodes FP32" beside "int8_nodes 1", as if almost all of it ran INT8, while its 4 GRU nodes, 99 % of
its multiply-adds, stay FP32 too: ONNX Runtime has no INT8 GRU kernel (`optimizer.quant_exclusions`). The count is
the calibrated graph's (the fuse stage's op counts); a model without GRU or RNN reads as before."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rich.console import Console

from quantserve import cli
from quantserve.cli.optimize_tables import print_stages

T, FEATURES, HIDDEN, CLASSES = 8, 4, 6, 3
RNG = np.random.default_rng(611)


def _calibrate_row(stages: list[dict[str, object]]) -> str:
    console = Console(record=True, width=400)
    print_stages(stages, console)
    row = next(line for line in console.export_text().splitlines() if line.startswith("│ calibrate"))
    return row.split("│")[-2].strip()


CALIBRATE = {
    "stage": "calibrate",
    "scheme": "static_qdq_compute",
    "method": "minmax",
    "activation_type": "QUInt8",
    "weight_type": "QInt8",
    "samples": 128,
    "cache": "hit",
    "kept_fp32": ["/Softmax", "/fc2/Add", "/fc1/MatMul"],
    "int8_nodes": 1,
    "int8_mac_share": 0.009174,
}


def test_the_gru_nodes_are_counted_beside_the_kept_ones() -> None:
    fuse = {"stage": "fuse", "nodes_before": 161, "nodes_after": 67, "op_types_after": {"GRU": 4, "MatMul": 2}}
    assert _calibrate_row([fuse, CALIBRATE]) == (
        "static_qdq_compute minmax, QUInt8/QInt8, 128 samples, cache hit, 0.92% of MACs in INT8, 3 nodes kept FP32, "
        "4 GRU with no INT8 kernel"
    )


def test_a_model_without_recurrent_nodes_reads_as_before() -> None:
    fuse = {"stage": "fuse", "nodes_before": 9, "nodes_after": 7, "op_types_after": {"MatMul": 2, "Softmax": 1}}
    assert _calibrate_row([fuse, CALIBRATE]).endswith(", 0.92% of MACs in INT8, 3 nodes FP32")


def _gru_tagger(path: Path) -> Path:
    """x (N, T, 4) -> MatMul -> GRU(6) over time -> MatMul -> logits (N, T, 3)."""

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(RNG.normal(0, 0.5, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("MatMul", ["x", "W_in"], ["projected"], name="fc_in"),
        helper.make_node("Transpose", ["projected"], ["by_time"], perm=[1, 0, 2]),
        helper.make_node("GRU", ["by_time", "W", "R"], ["states"], hidden_size=HIDDEN, name="gru"),
        helper.make_node("Squeeze", ["states", "one"], ["squeezed"]),
        helper.make_node("Transpose", ["squeezed"], ["by_row"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["by_row", "W_out"], ["logits"], name="fc_out"),
    ]
    initializers = [
        weight("W_in", FEATURES, HIDDEN),
        weight("W", 1, 3 * HIDDEN, HIDDEN),
        weight("R", 1, 3 * HIDDEN, HIDDEN),
        weight("W_out", HIDDEN, CLASSES),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
    ]
    graph = helper.make_graph(
        nodes,
        "gru_tagger",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, FEATURES])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", T, CLASSES])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def test_optimize_counts_the_graphs_gru(tmp_path: Path) -> None:
    model = _gru_tagger(tmp_path / "tagger.onnx")
    rows = tmp_path / "rows.npz"
    np.savez(rows, x=RNG.normal(0, 1, (64, T, FEATURES)).astype(np.float32))
    out = tmp_path / "build"
    args = ["optimize", str(model), "--calib", str(rows), "--out", str(out)]
    assert cli.main([*args, "--allow-slower", "--skip-timing", "--keep-failing"]) in (0, 1)
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert _calibrate_row(stages).endswith(" kept FP32, 1 GRU with no INT8 kernel")  # "1 node", "3 nodes"
