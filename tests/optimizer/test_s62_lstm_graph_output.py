"""An LSTM that writes a graph output itself is not kept FP32 for it: ONNX Runtime quantizes an LSTM only
dynamically (DynamicQuantizeLSTM), whose outputs stay float, so the rule that keeps a graph output's producer FP32
(one Q/DQ scale on an output can wreck it) does not apply. pythainlp's thai2rom encoder (batch fixed at 1, its LSTM
writing the hidden states) was refused "every compute node is kept FP32" while ORT's dynamic INT8 of it kept 398 of
400 romanized words and ran 1.92× (session 62, by hand)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.quant_exclusions import output_side_exclusions
from quantserve.cli import main

T, F, H = 12, 16, 64


def _encoder(path: Path) -> Path:
    """x [1, T, F] → Transpose → LSTM, its final states Y_h and Y_c the graph's outputs [1, 1, H]."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (1, 4 * H, F)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(0, 0.3, (1, 4 * H, H)).astype(np.float32), "R"),
        numpy_helper.from_array(np.zeros((1, 8 * H), np.float32), "B"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=H, name="lstm"),
    ]
    graph = helper.make_graph(
        nodes,
        "encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, F])],
        [
            helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, [1, 1, H]),
            helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [1, 1, H]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_lstm_writing_graph_outputs_is_not_excluded(tmp_path: Path) -> None:
    model = onnx.load(str(_encoder(tmp_path / "enc.onnx")))
    assert [e.node for e in output_side_exclusions(model)] == []


def test_its_dynamic_int8_is_built_and_judged(tmp_path: Path) -> None:
    source = _encoder(tmp_path / "enc.onnx")
    rng = np.random.default_rng(1)
    for name in ("calib", "eval"):
        np.savez(tmp_path / f"{name}.npz", x=rng.normal(size=(200, T, F)).astype(np.float32))
    out = tmp_path / "b"
    args = ["optimize", str(source), "--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "eval.npz")]
    assert main([*args, "--precision", "int8", "--unbatched", "--allow-slower", "--out", str(out)]) == 0
    ops = {node.op_type for node in onnx.load(str(out / "model.onnx")).graph.node}
    assert "DynamicQuantizeLSTM" in ops, ops
