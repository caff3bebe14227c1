"""The "nothing to quantize" refusal names the ops that hold the compute first. g2p's encoder (session 54) was
refused listing "its ops: Gather, Sub, Shape, Transpose, Reshape, Expand, …", the first six in graph order, the GRU
that holds all its compute hidden behind the "…", and nothing said that ONNX Runtime has no INT8 kernel for it."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.quant_exclusions import graph_no_compute_refusal

H, D = 8, 4


def _model(recurrent: str | None) -> onnx.ModelProto:
    """Shape arithmetic and an embedding before the recurrent op, as torch exports a GRU encoder."""
    rng = np.random.default_rng(0)
    weights = {
        "table": rng.standard_normal((30, D)),
        "shift": np.ones(D),
        "W": rng.standard_normal((1, 3 * H, D)),
        "R": rng.standard_normal((1, 3 * H, H)),
    }
    nodes = [
        helper.make_node("Shape", ["ids"], ["shape"]),
        helper.make_node("Gather", ["table", "ids"], ["embedded"]),
        helper.make_node("Sub", ["embedded", "shift"], ["centred"]),
        helper.make_node("Transpose", ["centred"], ["seq_first"], perm=[1, 0, 2]),
        helper.make_node("Reshape", ["seq_first", "shape3"], ["steps"]),
        helper.make_node("Expand", ["steps", "shape3"], ["wide"]),
        helper.make_node("Identity", ["wide"], ["x"]),
    ]
    if recurrent:
        nodes.append(helper.make_node(recurrent, ["x", "W", "R"], ["", "h"], hidden_size=H))
    else:
        nodes.append(helper.make_node("Relu", ["x"], ["h"]))
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    initializers.append(numpy_helper.from_array(np.array([0, 0, D], np.int64), "shape3"))
    graph = helper.make_graph(
        nodes,
        "encoder",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 6])],
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, None)],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_gru_encoder_is_refused_naming_the_gru_first_and_its_missing_int8_kernel() -> None:
    assert graph_no_compute_refusal(_model("GRU")) == (
        "nothing to quantize: the model has no Conv, MatMul or Gemm (its ops: GRU, Gather, Sub, Reshape, Expand, "
        "Shape, …; ONNX Runtime has no INT8 kernel for GRU); optimize it with --precision fp32 and deploy that build"
    )


def test_an_rnn_is_named_so_too() -> None:
    refusal = graph_no_compute_refusal(_model("RNN"))
    assert refusal is not None and "(its ops: RNN, Gather, " in refusal
    assert refusal.endswith(
        "; ONNX Runtime has no INT8 kernel for RNN); optimize it with --precision fp32 and deploy that build"
    )


def test_ops_without_a_recurrent_one_come_by_their_weights_and_no_kernel_is_named() -> None:
    refusal = graph_no_compute_refusal(_model(None))
    assert refusal == (
        "nothing to quantize: the model has no Conv, MatMul or Gemm (its ops: Gather, Sub, Reshape, Expand, Shape, "
        "Transpose, …); optimize it with --precision fp32 and deploy that build"
    )
