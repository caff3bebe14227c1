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

from optimizer.soft_masks import mask_threshold
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


def score_labels(labels: np.ndarray | None, scores: np.ndarray) -> np.ndarray | None:
    """`labels` as one 0/1 answer per score (negative: unlabelled, Hugging Face's -100), where they are that for
    `scores` — one value per sample, (N,) or (N, 1), or per token, labels of its (N, T) shape; None otherwise."""
    if labels is None or not np.issubdtype(labels.dtype, np.integer) or not np.issubdtype(scores.dtype, np.floating):
        return None
    one_per_sample = scores.ndim in (1, 2) and scores.size == len(scores) == labels.size
    if not (one_per_sample or labels.shape == scores.shape) or not np.isin(labels[labels >= 0], (0, 1)).all():
        return None
    return labels.reshape(scores.shape) if (labels >= 0).any() else None


SCORE_ACCURACY_KEYS = ("fp32_accuracy", "accuracy", "accuracy_drop_points")  # what `score_accuracy` records


def score_accuracy(
    reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, threshold: float
) -> dict[str, float]:
    """FP32's and INT8's accuracy of one yes/no score per sample or token, read at `threshold` (its logit for logits,
    `soft_masks.mask_threshold`) against 0/1 `labels` of the same shape over the labelled ones, and the drop. A Keras
    binary head (N, 1) with 0/1 labels read as "1 class": "3796 class id(s) outside 0..0", unscored, though its
    decisions at 0.5 were judged (deepcut, session 58)."""
    labelled = labels >= 0
    cut, _ = mask_threshold(reference, threshold)
    truth = labels[labelled] == 1
    fp32 = float(np.mean((reference[labelled] >= cut) == truth))
    int8 = float(np.mean((candidate[labelled] >= cut) == truth))
    return {"fp32_accuracy": fp32, "accuracy": int8, "accuracy_drop_points": 100.0 * (fp32 - int8)}
