"""The INT8 search's out-of-time refusal names --model-type bert where no --model-type was given and the graph is a
transformer encoder ONNX Runtime has not fused (session 61): rxnfp's 12-layer BERT, 882 nodes unfused, ran out of its
300 s ("set-up took 117 s and the first candidate ran 191 s … or deploy fp32") with no word of it, while
`--model-type bert` fused it to 93 nodes and shipped.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.int8_verdict import SearchVerdict
from optimizer.search_budget import SearchBudget

HINT = (
    "; the graph is a BERT-style encoder: --model-type bert fuses it first (ONNX Runtime's transformer fusions), a "
    "smaller graph to search"
)


def _attention(fused: bool = False) -> onnx.ModelProto:
    """x (N, 4, 8) → softmax(q·kᵀ)·x, layer-normalized: one unfused self-attention; `fused` adds ORT's Attention op."""
    eye = np.eye(8, dtype=np.float32)
    weights = [numpy_helper.from_array(eye, "wq"), numpy_helper.from_array(eye, "wk")]
    weights += [numpy_helper.from_array(np.ones(8, np.float32), "scale")]
    weights += [numpy_helper.from_array(np.zeros(8, np.float32), "bias")]
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["probs"], axis=-1),
        helper.make_node("MatMul", ["probs", "x"], ["mixed"]),
        helper.make_node("LayerNormalization", ["mixed", "scale", "bias"], ["y"], axis=-1),
    ]
    if fused:
        nodes.append(helper.make_node("Attention", ["x"], ["unused"], domain="com.microsoft", num_heads=1))
    graph = helper.make_graph(
        nodes,
        "encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8])],
        weights,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )


def _mlp() -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.eye(8, dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [weight],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _refusal(model: onnx.ModelProto, model_type: str | None = None) -> str:
    """The search's out-of-time line for `model`, its budget spent before anything ran."""
    run = SimpleNamespace(budget=SearchBudget(300.0, clock=lambda: 0.0), model=model)
    run.stage = SimpleNamespace(model_type=model_type)
    return SearchVerdict._time_refusal(run)  # type: ignore[arg-type]


def test_an_unfused_encoder_out_of_time_is_told_of_model_type_bert() -> None:
    line = _refusal(_attention())
    assert line.startswith("the INT8 search ran out of time: ") and line.endswith(HINT)
    assert "or deploy fp32" + HINT in line
    assert line.record["refused_for"] == "time"  # type: ignore[attr-defined]


def test_no_hint_once_a_model_type_is_given_or_the_graph_is_fused_or_no_encoder() -> None:
    assert HINT not in _refusal(_attention(), model_type="bert")
    assert HINT not in _refusal(_attention(fused=True))
    assert HINT not in _refusal(_mlp())
