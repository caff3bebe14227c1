"""Outputs a Sigmoid makes: per-label probabilities, read by their decisions at --label-threshold.

Values alone cannot tell a low-confidence multi-label classifier from regressions in [0, 1]: a 10-class sigmoid head
whose scores mostly sit between 0.2 and 0.8 has no class plainly off and none standing out, so it read `dense`, and a
build with 1.8 % of its thresholded answers flipped (label sets kept on 0.982 of the rows) passed on correlation. The
graph can: an output a Sigmoid makes (through ops that only move or cast values) is a probability per label. Such an
output read `dense` off its values, two or more columns of floats in [0, 1], is `multilabel`, judged by its label sets
at --label-threshold against the top-1 budget (`optimizer.drift_metrics`); other readings stand (a confident head
already reads as a classifier or a tagger, and a wide one's features are the embedding rules').
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnx

from optimizer.typed_kinds import is_typed
from quantserve.metrics import probabilities

# ops whose output carries their first input's values (a shape, a type or INT8 rounding aside)
CARRY_OPS = frozenset(
    {"Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "QuantizeLinear", "DequantizeLinear"}
)


def sigmoid_outputs(model: onnx.ModelProto | Path | str) -> frozenset[str]:
    """The graph outputs a Sigmoid makes, directly or through `CARRY_OPS`."""
    return outputs_made_by(model, lambda node, _: node.op_type == "Sigmoid")


def outputs_made_by(model: onnx.ModelProto | Path | str, made: Callable[[onnx.NodeProto, str], bool]) -> frozenset[str]:
    """The graph outputs whose maker — the first node back from each through `CARRY_OPS`, and the output of it
    carried — passes `made` (a Sigmoid here; a recurrent node's state in `optimizer.recurrent_states`)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    producers = {out: node for node in model.graph.node for out in node.output}
    return frozenset(
        value.name for value in model.graph.output if (found := _maker(value.name, producers)) and made(*found)
    )


def _maker(name: str, producers: Mapping[str, onnx.NodeProto]) -> tuple[onnx.NodeProto, str] | None:
    seen: set[str] = set()
    while (node := producers.get(name)) is not None and name not in seen:
        if node.op_type not in CARRY_OPS:
            return node, name
        if not node.input:
            return None
        seen.add(name)
        name = node.input[0]
    return None


def sigmoid_kind(kind: str, values: np.ndarray) -> str:
    """`kind` as read off the values of an output a Sigmoid makes (`values` on its real axes): "multilabel" where that
    reading is "dense" over two or more columns of floats in [0, 1], per-label probabilities; `kind` otherwise."""
    if kind != "dense" or values.ndim != 2 or values.shape[1] < 2 or not values.size:
        return kind
    if not np.issubdtype(values.dtype, np.floating) or not np.isfinite(values).all():
        return kind
    return "multilabel" if probabilities(values) else kind


UNDECIDED = (0.2, 0.8)  # a label's probability between these commits to neither answer


def undecided_labels_doubt(name: str, kind: str, values: np.ndarray, failed: bool) -> str:
    """The line a failing `multilabel` reading carries where most of its values commit to neither answer: a
    low-confidence head, or coordinates or scores a Sigmoid squashes into [0, 1], whose flips at the threshold mean
    nothing; not for a kind the user typed."""
    if not failed or kind != "multilabel" or is_typed(kind) or values.ndim != 2 or not values.size:
        return ""
    undecided = float(np.mean((values > UNDECIDED[0]) & (values < UNDECIDED[1])))
    if undecided < 0.5:
        return ""
    return (
        f"output '{name}' is read as per-label probabilities, its label sets judged at --label-threshold, though "
        f"{undecided:.0%} of its values lie between {UNDECIDED[0]} and {UNDECIDED[1]}; if its columns are not labels "
        f"(coordinates, scores), name --output-kind {name}=dense"
    )
