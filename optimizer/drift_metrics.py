"""The drift metrics of one output, by its kind: top-1 and label-set agreement, cosines and neighbours,
decoded sequences (a best path's, `optimizer.sequence_paths`), masks' IoU (a soft mask's per sample,
`optimizer.soft_masks`), images' PSNR per sample (`optimizer.image_outputs`), a box list's matched boxes
(`optimizer.box_lists`), a tagger's label sets (`optimizer.label_sets`), per-channel correlation and error along
every axis channels may lie on.
The metric math itself lives in `quantserve.metrics`.
Per-channel correlation, spread error and quiet channels: `optimizer.channel_metrics`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optimizer.anchor_heads import AnchorEntries, anchor_channel_metrics
from optimizer.anchor_scores import anchor_decisions, head_score_decisions
from optimizer.box_lists import BOX_SCORE_THRESHOLD, box_list_metrics
from optimizer.channel_metrics import channel_metrics, decoded_head_metrics
from optimizer.class_agreement import class_flips, id_flips
from optimizer.decision_metrics import (
    DECISION_KEYS,
    confident_decisions,
    score_decisions,
    value_decisions,
)
from optimizer.decoded_heads import decoded_head
from optimizer.detection_heads import BOX_CHANNELS, detection_axis
from optimizer.drift_budget import UnsetThreshold
from optimizer.heatmap_peaks import peak_metrics
from optimizer.image_outputs import image_metrics
from optimizer.label_sets import label_set_metrics
from optimizer.mask_metrics import class_map_metrics, mask_metrics
from optimizer.nonfinite_counts import nonfinite_where_finite
from optimizer.real_axes import real_axes
from optimizer.row_kinds import usable_labels
from optimizer.sequence_paths import ctc_path, ctc_path_metrics, path_metrics, real_frames
from optimizer.sigmoid_outputs import SCORE_ACCURACY_KEYS, score_accuracy, score_labels
from optimizer.soft_masks import soft_mask_metrics, unjudged_words
from optimizer.task_outputs import TASKS_KIND
from optimizer.token_values import MEASURED_PER_TOKEN, live_positions, per_token, token_values_metrics
from optimizer.typed_kinds import TOKEN_KINDS
from optimizer.value_errors import value_difference
from quantserve import metrics
from quantserve.errors import InternalError, QuantserveError

UNSET_THRESHOLD = UnsetThreshold(0.5)  # no --label-threshold given (`DriftBudget`'s default)


def output_metrics(
    kind: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    label_threshold: float = UNSET_THRESHOLD,
    anchors: AnchorEntries | None = None,
) -> dict[str, Any]:
    """Every metric of one output: those of its kind, worst channel correlation (an anchor head's over its firing
    `anchors`, `optimizer.anchor_heads`), and the whole-tensor extras, measured along its real axes
    (`optimizer.real_axes.real_axes`: (N, 1, 1, 96) as (N, 96)); the axes the record names are the output's own."""
    if reference.shape != candidate.shape:
        raise QuantserveError(f"output shape {candidate.shape} differs from the FP32 reference's {reference.shape}")
    if kind == "angle":  # radians: judged as a regression of INT8's value on FP32's turn, its angular error recorded
        turned = same_turn(reference, candidate)
        record = output_metrics("regression", reference, turned, labels, positions, label_threshold)
        error = np.abs(turned - reference)
        worst = float(error.max()) if error.size else 0.0
        return {
            **record,
            "kind": kind,
            "angle_error_mean_rad": float(error.mean()) if error.size else 0.0,
            "angle_error_worst_rad": worst,
        }
    if kind == "regression":  # a dense output's values, without a score's decisions (the user said what it is)
        record = output_metrics("dense", reference, candidate, labels, positions, label_threshold)
        unread = (*DECISION_KEYS, *SCORE_ACCURACY_KEYS)  # nor a score's accuracy at a threshold: values alone
        return {**{key: value for key, value in record.items() if key not in unread}, "kind": kind}
    if kind in TOKEN_KINDS:  # its axes are (samples, tokens, values) as they stand: the token positions name them
        return _token_metrics(kind, reference, candidate, labels, positions)
    if positions is not None and per_token_ids(kind, reference, positions):
        return token_ids_metrics(reference, candidate, positions, labels)
    frames = real_frames(kind, reference, positions)
    if kind == "sequence" and ctc_path(reference):
        return ctc_path_metrics(reference, candidate, frames)
    if kind in MEASURED_PER_TOKEN and positions is not None and per_token(reference, positions):  # (N, T)
        record = token_values_metrics(output_metrics, kind, reference, candidate, labels, positions, label_threshold)
        # 0/1 (-100) per token of a score (not of a regression or an angle, judged by their values alone)
        truth = score_labels(labels, reference) if kind in ("dense", "multilabel") else None
        if truth is not None and (truth[positions] >= 0).any():  # judged at the threshold: scored there, by token
            record.update(score_accuracy(reference[positions], candidate[positions], truth[positions], label_threshold))
        return record
    axes = real_axes(reference.shape)
    shape = [reference.shape[axis] for axis in axes]
    frames = frames if len(axes) == reference.ndim else None  # (N, T) no longer the first two axes: every frame
    expected, got = reference.reshape(shape), candidate.reshape(shape)
    record = _layout_metrics(kind, expected, got, labels, label_threshold, frames, anchors)
    return {**_axes_named_as_exported(record, axes), "shape": list(reference.shape)}


def same_turn(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """`candidate`'s angles (radians) moved by whole turns to lie within π of `reference`'s: an angle output near ±π
    differs by 2π as a value where it is the same angle (LEADER's minutia directions, session 34: answered as π − ε
    at one batch size and −π + ε at another). In float64, the error measured between them."""
    reference64, candidate64 = reference.astype(np.float64), candidate.astype(np.float64)
    return reference64 + np.remainder(candidate64 - reference64 + np.pi, 2 * np.pi) - np.pi


def _axes_named_as_exported(record: dict[str, Any], axes: tuple[int, ...]) -> dict[str, Any]:
    """The record of an output measured with its singleton axes dropped, its channel axes renamed to the output's
    own (axis 1 of (N, 96) is axis 3 of (N, 1, 1, 96)): a refusal names the axis the user's model has."""
    for key in (
        "channel_worst_axis",
        "channel_error_worst_axis",
        "channel_gain_worst_axis",
        "quiet_error_worst_axis",
        "quiet_fired_axis",
    ):
        if record.get(key) is not None:
            record[key] = axes[record[key]]
    for key in ("channel_axes", "quiet_channels"):
        if key in record:
            record[key] = {str(axes[int(axis)]): count for axis, count in record[key].items()}
    return record


def labels_unused(labels: np.ndarray | None, scores: np.ndarray) -> str:
    """Why integer labels of one class per sample cannot score these class scores (N, C), "" where they can or are
    not such labels (float truth is a `--metric`'s; token labels are a token output's). Ids 3..6 for 4 classes, or
    labels of shape (N, 1), were dropped in silence: no accuracy, its budget unjudged, exit 0 (session 41), where
    `infer` and `evaluate` refuse the same file."""
    if labels is None or scores.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        return ""
    if score_labels(labels, scores) is not None:  # 0/1 answers of one score per sample: scored at the threshold
        return ""
    if labels.size != len(scores) or not labels.size:
        return ""
    if labels.ndim != 1:
        return f"labels of shape {labels.shape}: one class id per sample is shape ({len(labels)},); save labels.ravel()"
    outside = np.flatnonzero((labels < 0) | (labels >= scores.shape[1]))
    if not outside.size:
        return ""
    first = int(outside[0])
    return (
        f"{outside.size} class id(s) outside 0..{scores.shape[1] - 1}, the output's {scores.shape[1]} classes "
        f"(first: {int(labels[first])} in row {first})"
    )


def _layout_metrics(
    kind: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray | None,
    label_threshold: float,
    frames: np.ndarray | None = None,
    anchors: AnchorEntries | None = None,
) -> dict[str, Any]:
    """`output_metrics` of an output along the axes it has here (its real axes): the kind's own metrics (a sequence's
    over its real `frames`, where known), then the channel figures and whole-tensor extras of every float kind but ids
    and masks (a soft mask's relative error)."""
    record: dict[str, Any] = {
        "kind": kind,
        "shape": list(reference.shape),
        **_kind_metrics(kind, reference, candidate, label_threshold, frames),
    }
    if kind in ("ids", "mask"):  # only equality means anything (correlation or cosine of class ids does not)
        record.update(id_accuracy(reference, candidate, labels) if kind == "ids" else {})
        return {**record, "values_changed": int(np.sum(reference != candidate))}
    if kind == "soft_mask":  # its cut maps' IoU, and a continuous figure that ranks candidates (`DriftReport.error`)
        drift = metrics.relative_error(reference, candidate)[0] if reference.size else 0.0
        record["relative_error"] = float(drift)
        unjudged = unjudged_words(record)  # too few samples' masks to judge by IoU: the map's values as a dense one's
        if unjudged:
            record.update(channel_metrics("dense", reference, candidate, label_threshold), mask_unjudged=unjudged)
        return record
    if kind == "image":  # per-sample PSNR (`optimizer.image_outputs`); a relative error ranks candidates
        return {**record, **image_metrics(reference, candidate)}
    if kind == "box_list":  # its rows are ranks: row by row, the tail's reordering reads as drift
        return record
    one_value = reference.size == len(reference)  # one score per sample: no cosine, 0/1 labels scored at the cut
    if kind in ("dense", "multilabel") and one_value and (truth := score_labels(labels, reference)) is not None:
        record.update(score_accuracy(reference, candidate, truth, label_threshold))
    if kind == "classification" and usable_labels(labels, reference):
        record.update(_accuracy(reference, candidate, labels))  # type: ignore[arg-type]
    elif kind in ("classification", "dense", "embedding") and (unused := labels_unused(labels, reference)):
        record["labels_unused"] = unused  # unused labels may be why a classifier reads as dense or an embedding
    if kind == "classification" and not isinstance(label_threshold, UnsetThreshold):  # used at a confidence
        record.update(confident_decisions(reference, candidate, label_threshold))  # (`optimizer.decision_metrics`)
    head = decoded_head(reference, label_threshold) if kind == "detection" else None
    if head is not None:  # a raw YOLO head's boxes, and its channels where its decoder reads them
        record.update(decoded_head_metrics(head, reference, candidate))
    elif anchors is not None:  # an anchor head's output: per anchor where FP32 fires (`optimizer.anchor_heads`)
        record.update(anchor_channel_metrics(kind, reference, candidate, anchors))
    else:
        record.update(channel_metrics(kind, reference, candidate, label_threshold))
        if kind == "detection":  # its score channels' clear decisions, as a split head's scores are judged
            axis = detection_axis(reference)
            record.update(head_score_decisions(reference, candidate, label_threshold, axis, BOX_CHANNELS))
    if kind == "dense":  # one score per sample: its decisions at the threshold (`optimizer.decision_metrics`)
        record.update(score_decisions(reference, candidate, label_threshold))
        judged = "decision_agreement" in record or "flag_agreement" in record  # a flag's are judged as its own
        if not judged and not isinstance(label_threshold, UnsetThreshold):
            record.update(value_decisions(reference, candidate, label_threshold))  # every value a decision: said
        record.update(anchor_decisions(reference, candidate, label_threshold))  # many positions' scores, as read
        record.update(peak_metrics(reference, candidate, label_threshold))  # a keypoint heatmap's argmax cells
    if not one_value:  # a cosine of one value is 1 or 0 (0 where one side's sigmoid is exactly 0): it means nothing
        cosines = metrics.cosine_similarity(reference, candidate) if reference.size else np.ones(1)
        record.setdefault("cosine_mean", float(cosines.mean()))
        record.setdefault("cosine_worst", float(cosines.min()))
    mean_abs, max_abs = abs_difference_told(reference, candidate) if reference.size else (0.0, 0.0)
    record.update(max_abs_diff=max_abs, mean_abs_diff=mean_abs)
    record.update(value_difference(kind, reference, candidate, math.isinf(max_abs)))  # its p95 too, in its units
    return record


def abs_difference_told(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(mean, max) absolute difference (`metrics.abs_difference`), both inf where the candidate has a value NaN or
    infinite where FP32 is finite: a max skipping the NaN read "max_abs_diff 0" beside 1097 INT8 NaN where FP32
    was finite, a perfect match (session 58). Values FP32 itself has non-finite are the caller's to leave out
    (`optimizer.drift.finite_in_fp32`)."""
    mean_abs, max_abs = metrics.abs_difference(reference, candidate)
    if nonfinite_where_finite(np.asarray(reference), np.asarray(candidate)):
        return math.inf, math.inf
    return mean_abs, max_abs


def _token_metrics(
    kind: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None, positions: np.ndarray | None
) -> dict[str, Any]:
    """A (N, T, C) per-token output measured over its real tokens' rows only (every position where the rows
    carry no attention mask): token_classification by per-token top-1 agreement (and, with (N, T) token labels,
    accuracy over the labelled tokens; negative labels, Hugging Face's -100, are unlabelled), token_embedding by
    per-token cosine. The share of samples with every token's class unchanged is information. Where token labels
    leave some real tokens unlabelled, a tagger is judged on its labelled tokens alone (`labelled_tokens`)."""
    real = real_tokens(reference, positions)
    # per-token rows: an embedding's cosines without its neighbour search (tokens × tokens similarities)
    base = "classification" if TOKEN_KINDS[kind] == "classification" else "dense"
    labelled = labelled_tokens(real, labels, reference.shape) if base == "classification" else None
    judged = real if labelled is None else labelled
    record = output_metrics(base, reference[judged], candidate[judged])
    record.update(kind=kind, shape=list(reference.shape), tokens_judged=int(judged.sum()))
    if base == "classification":
        record["token_agreement"] = record.pop("top1_agreement")
        changed = (reference.argmax(axis=2) != candidate.argmax(axis=2)) & real
        record["samples_unchanged"] = float(np.mean(~(changed & judged).any(axis=1)))
        if labelled is not None and labels is not None:  # the figure over every real token, as information
            record.update(unlabelled_words(labels, real), tokens_real=int(real.sum()))
            record["token_agreement_real"] = 1.0 - float(changed.sum()) / max(int(real.sum()), 1)
        if labels is not None and labels.shape == reference.shape[:2] and np.issubdtype(labels.dtype, np.integer):
            scored = real & (labels >= 0) & (labels < reference.shape[2])
            if scored.any():
                record.update(_accuracy(reference[scored], candidate[scored], labels[scored]))
    return record


def labelled_tokens(real: np.ndarray, labels: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The real tokens with a label, where (N, T) integer token labels leave some real tokens unlabelled (negative:
    Hugging Face's -100 at subwords, special tokens and positions the task never reads) and label others; None
    otherwise (no such labels, every real token labelled, or none). g2pM's polyphone tagger, labelled at its
    polyphones only (22 % of its tokens), was refused at per-token agreement 0.9688 over every token; on the 3742
    it reads INT8 agreed 0.9992, and one "lost class" was FP32's answer at 6 unlabelled tokens (session 57)."""
    if labels is None or labels.shape != shape[:2] or not np.issubdtype(labels.dtype, np.integer):
        return None
    labelled = real & (labels >= 0)
    if not labelled.any() or labelled.sum() == real.sum():
        return None
    return labelled


def unlabelled_words(labels: np.ndarray, real: np.ndarray) -> dict[str, str]:
    """{"unlabelled_as": "labels -100"} (or "negative labels" where the unlabelled take several values): how the
    record's unlabelled tokens were marked, for the note that says what was judged (`drift.tokens_notes`)."""
    values = np.unique(labels[real & (labels < 0)])
    return {"unlabelled_as": f"labels {int(values[0])}" if values.size == 1 else "negative labels"}


def per_token_ids(kind: str, reference: np.ndarray, positions: np.ndarray) -> bool:
    """Whether an ids output holds one id per token, (N, T) as the token positions are (`token_ids_metrics`)."""
    return kind == "ids" and reference.ndim == 2 and reference.shape == positions.shape


def token_ids_metrics(
    reference: np.ndarray, candidate: np.ndarray, positions: np.ndarray, labels: np.ndarray | None = None
) -> dict[str, Any]:
    """A (N, T) integer output of one id per token (a tagger with its argmax in the graph) measured over its real
    tokens, as a tagger's logits are (`_token_metrics`, its labelled tokens alone where labels leave some
    unlabelled): per-token agreement, judged; the share of samples with every real token's id unchanged,
    information. Judged per sample over every position, padding included, a tagger whose INT8 ids changed only at
    padded positions (which nothing reads) was refused at id agreement 0.95."""
    real = real_tokens(reference, positions)
    labelled = labelled_tokens(real, labels, reference.shape)
    judged = real if labelled is None else labelled
    changed = (reference != candidate) & judged
    count = int(judged.sum())
    record = {
        "kind": "ids",
        "shape": list(reference.shape),
        "token_agreement": 1.0 - float(changed.sum()) / count if count else 1.0,
        "samples_unchanged": float(np.mean(~changed.any(axis=1))) if len(reference) else 1.0,
        "tokens_judged": count,
        "values_changed": int(changed.sum()),
        **id_flips(reference[judged], candidate[judged]),
    }
    if labelled is not None and labels is not None:
        every = int(np.count_nonzero((reference != candidate) & real))
        record.update(unlabelled_words(labels, real), tokens_real=int(real.sum()))
        record["token_agreement_real"] = 1.0 - every / int(real.sum())
    return record


def real_tokens(reference: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    """The (N, T) positions a (N, T, C) per-token output is judged over: its real tokens, or where the rows mark
    none, every position whose FP32 answer is not all 0 (`live_positions`), else every position."""
    real = positions if positions is not None and positions.shape == reference.shape[:2] else None
    if real is not None and real.any():
        return real
    live = live_positions(reference)
    return live if live.any() else np.ones(reference.shape[:2], dtype=bool)


def _kind_metrics(
    kind: str, reference: np.ndarray, candidate: np.ndarray, label_threshold: float, frames: np.ndarray | None = None
) -> dict[str, Any]:
    if kind == "ids":
        return {"id_agreement": metrics.exact_agreement(reference, candidate)}
    if kind == "mask":
        return mask_metrics(reference, candidate)
    if kind == "soft_mask":
        return soft_mask_metrics(reference, candidate, label_threshold)
    if kind == "box_list":  # boxes from the user's --label-threshold, else from YOLO's default confidence
        unset = isinstance(label_threshold, UnsetThreshold)
        threshold = BOX_SCORE_THRESHOLD if unset else label_threshold  # a split list's columns as it assembled them
        return box_list_metrics(reference, candidate, threshold, getattr(kind, "columns", None))
    if kind == "class_map":  # the answer map: the class each position takes (where sure, at a threshold given)
        return class_map_metrics(reference, candidate, label_threshold)
    if kind == "classification":  # and the classes FP32 answers that INT8 answers otherwise (`class_agreement`)
        return {"top1_agreement": metrics.top1_agreement(reference, candidate), **class_flips(reference, candidate)}
    if kind in ("multilabel", TASKS_KIND):  # each class's own decisions too: all of a multitask output's
        every = kind == TASKS_KIND  # (`optimizer.task_outputs`), a tagger's worst for its refusal's word
        return label_set_metrics(reference, candidate, label_threshold, every)  # near-ties left out
    if kind == "sequence":  # the calls in their places too, where the kind was read off the values (`optimizer.drift`)
        paths = np.argmax(reference, axis=-1), np.argmax(candidate, axis=-1)  # once: PP-OCRv5's is 100 M values
        return path_metrics(*paths, frames)  # over its real frames, where known
    if kind == "embedding" and reference.ndim != 2:  # a caller's slip, not the user's data: raised as a user error,
        # it read as every INT8 scheme failing to build, "deploy fp32" (AntiBERTy's (N, T, 512), session 59)
        raise InternalError(f"an embedding is measured as (samples, dim) rows; got shape {reference.shape}")
    if kind == "embedding" and len(reference) >= 2:
        k = min(5, len(reference) - 1)
        unchanged, overlap = metrics.retrieval_agreement(reference, candidate, k)
        changed, regret = metrics.nearest_neighbour_regret(reference, candidate)
        return {
            "neighbour_k": k,
            "neighbours_unchanged": unchanged,
            "neighbour_overlap": overlap,
            "nearest_changed": changed,
            "neighbour_regret": regret,
        }
    return {}


def id_accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """The accuracy of one class id per sample (a classifier's ArgMax in its graph; a TopK's first index) against
    integer labels of one class per sample, FP32's and INT8's and the drop, as a classifier's logits get; {} where
    the ids or labels are not one per sample. Judged by id agreement alone, a loosened --min-top1-agreement left
    --max-accuracy-drop unjudged, and evaluate showed no accuracy for such a model."""
    if labels is None or not np.issubdtype(np.asarray(labels).dtype, np.integer) or not len(reference):
        return {}
    rows = len(reference)
    if reference.size != rows or np.asarray(labels).size != rows:  # not one id a sample, or not one label a sample
        return {}
    truth = np.asarray(labels).reshape(rows)
    fp32, int8 = metrics.accuracy(truth, reference.reshape(rows)), metrics.accuracy(truth, candidate.reshape(rows))
    return {"fp32_accuracy": fp32, "accuracy": int8, "accuracy_drop_points": 100.0 * (fp32 - int8)}


def _accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """FP32's and INT8's accuracy of class scores (N, C) against labels, and the drop the budget judges; where FP32's
    own is at chance (`metrics.labels_at_chance`), the labels are not this output's classes: no drop is budgeted,
    and `labels_at_chance` ({classes, samples}) says so (`drift.chance_notes`)."""
    fp32 = metrics.accuracy(labels, reference.argmax(axis=1))
    int8 = metrics.accuracy(labels, candidate.argmax(axis=1))
    classes, samples = int(reference.shape[1]), len(labels)
    if metrics.labels_at_chance(fp32, classes, samples):
        return {"fp32_accuracy": fp32, "accuracy": int8, "labels_at_chance": {"classes": classes, "samples": samples}}
    return {"fp32_accuracy": fp32, "accuracy": int8, "accuracy_drop_points": 100.0 * (fp32 - int8)}
