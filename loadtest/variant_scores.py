"""How one served variant's answers are scored in `evaluate`'s headline table: which output the table scores
(`headline_output`), task metrics against labels for class scores, class ids and strings, cosine statistics for
embeddings (`score_variant`), labels checked before they score (`check_class_labels`), and each variant's accuracy
drop from the reference's (`set_drops`). Split from `loadtest.evaluator`, which serves and judges the variants.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from loadtest.accuracy_results import VariantAccuracy
from loadtest.served_graph import served_kinds
from optimizer.drift import finite_in_fp32
from optimizer.drift_metrics import abs_difference_told
from optimizer.graph_words import GraphWords
from optimizer.ranked_ids import ranked_outputs
from optimizer.split_box_lists import split_box_lists
from quantserve import metrics
from quantserve.errors import InternalError, QuantserveError

# The output the headline table scores when --output is not given: class scores first, ids last.
HEADLINE_KINDS = (
    "classification",
    "multilabel",
    "multitask",
    "embedding",
    "token_classification",
    "token_embedding",
    "sequence",
    "detection",
    "box_list",
    "class_map",
    "soft_mask",
    "image",
    "dense",
    "regression",
    "angle",
    "mask",
    "ids",
)


def headline_output(
    produced: dict[str, np.ndarray],
    kinds: Mapping[str, str] | None,
    labels: np.ndarray | None,
    inputs: Mapping[str, np.ndarray] | None = None,
    graph: GraphWords | None = None,
    decided: Mapping[str, str] | None = None,
) -> str:
    """The first output (by name) of the most scoreable kind: a model's logits, not the argmax label beside them.
    Kinds as the verdict reads them, those the build's labels `decided` too (`served_graph.decided_kinds`): a
    labelled per-epoch softmax read as CTC here ranked below the per-epoch features beside it (session 62)."""
    found = served_kinds(produced, kinds, labels, inputs, graph, decided)
    ranked = ranked_outputs(produced)  # a TopK's indices answer a class, as logits do, not its sorted values beside

    followers = {name for group in split_box_lists(produced) for name in group.members[1:]}  # its boxes first

    def order(name: str) -> tuple[int, bool]:
        return HEADLINE_KINDS.index("classification" if name in ranked else found[name]), name in followers

    return min(sorted(produced), key=order)


def reads_as_embedding(values: np.ndarray, kind: str | None = None, labels: np.ndarray | None = None) -> bool:
    """Whether an output reads as an embedding: as `--output-kind` names it (`kind`), else as the drift table reads
    it (`optimizer.output_kinds.infer_kind`), given labels only where they are class ids of its rows (others are
    checked, or refused, where they are scored). A 64-wide unit-length embedding given digit labels read "accuracy
    0.0120" in `infer`, and accuracy, F1 and AUC beside "cosine min –" in `evaluate` (session 40)."""
    from optimizer.output_kinds import infer_kind

    if kind is not None:
        return kind == "embedding"
    if not np.issubdtype(values.dtype, np.floating):
        return False
    ids = labels if labels is not None and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer) else None
    return bool(infer_kind(values, ids if ids is not None and len(ids) == len(values) else None) == "embedding")


def scores_no_class(values: np.ndarray, labels: np.ndarray | None, positions: np.ndarray | None) -> bool:
    """Whether `labels` score no class output here, as optimize reads them: one float score per sample ((N,), (N, 1):
    a sigmoid head), or a float per token (N, T) beside labels per token. The drift judges such an output at
    --label-threshold and scores 0/1 labels there (`optimizer.sigmoid_outputs.score_accuracy`); a --metric gets the
    labels as they are. Read as class scores, deepcut's 0/1 labels were "3796 class id(s) outside 0..0", and its
    per-character labels "needs one class id per sample", exit 2, where optimize took the same file (session 58)."""
    if labels is None or not np.issubdtype(values.dtype, np.floating):
        return False
    if values.ndim in (1, 2) and values.size == len(values):
        return True
    return positions is not None and values.shape == positions.shape == labels.shape


def score_variant(
    model: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray | None,
    source: Path | str = "the data",
) -> VariantAccuracy:
    """Task metrics (with labels) or cosine statistics (embeddings), plus the difference to the reference."""
    if reference.shape != candidate.shape:
        raise QuantserveError(
            f"model '{model}' output shape {candidate.shape} differs from the reference's {reference.shape}"
        )
    if class_ids(reference):
        return _score_ids(model, reference, candidate, labels, source)
    if labels is not None:
        check_class_labels(source, labels, candidate, model)
    if candidate.dtype.kind in STRING_OUTPUT_KINDS:
        return _score_strings(model, reference, candidate)
    # values FP32 itself has NaN or infinite left out, as the drift budget's rows leave them (a 0/0 on silence)
    reference, candidate, _ = finite_in_fp32("", reference, candidate)
    mean_diff, max_diff = abs_difference_told(reference, candidate)
    result = VariantAccuracy(model=model, samples=len(candidate), mean_abs_diff=mean_diff, max_abs_diff=max_diff)
    if labels is None and candidate.size == len(candidate):  # a cosine of one value per sample is 1 or 0: none
        return result
    if labels is None:
        cosine = metrics.cosine_similarity(reference, candidate)
        result.cosine_mean = float(cosine.mean())
        result.cosine_min = float(cosine.min())
        result.cosine_p01 = float(np.percentile(cosine, 1))
        return result
    predicted = candidate.argmax(axis=1)
    probabilities = metrics.as_probabilities(candidate)
    result.top1_agreement = metrics.top1_agreement(reference, candidate)
    result.accuracy = metrics.accuracy(labels, predicted)
    result.precision_macro, result.recall_macro, result.f1_macro = metrics.precision_recall_f1_macro(labels, predicted)
    result.auc_roc_ovr = metrics.one_vs_rest("auc_roc", labels, probabilities)
    result.auc_pr_ovr = metrics.one_vs_rest("auc_pr", labels, probabilities)
    return result


def class_ids(values: np.ndarray) -> bool:
    """One integer id per sample, (N,) or (N, 1): a classifier's ArgMax in its graph."""
    return values.dtype.kind in "biu" and values.ndim in (1, 2) and values.size == len(values) > 0


def _score_ids(
    model: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None, source: Path | str
) -> VariantAccuracy:
    """A class id per sample: top-1 agreement is the share of ids unchanged, accuracy and macro P/R/F1 the ids'
    against the labels (no AUC: no scores), and a value's difference 0 or 1 as a string's. Scored as class scores,
    an ArgMax model's ids were refused as "not class scores" with labels, and without them read a cosine of class
    ids, which means nothing (session 50)."""
    ref, got = reference.reshape(-1), candidate.reshape(-1)
    same = ref == got
    result = VariantAccuracy(
        model=model,
        samples=len(got),
        top1_agreement=float(same.mean()),
        mean_abs_diff=float(1.0 - same.mean()),
        max_abs_diff=float(not same.all()),
    )
    if labels is None:
        return result
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != ref.shape:
        raise QuantserveError(
            f"{source}: 'labels' ({labels.dtype}, shape {labels.shape}) cannot score model '{model}''s class ids: "
            f"they need one integer class id per sample, shape {ref.shape}"
        )
    result.accuracy = metrics.accuracy(labels, got)
    result.precision_macro, result.recall_macro, result.f1_macro = metrics.precision_recall_f1_macro(labels, got)
    return result


# Strings (Triton BYTES outputs arrive as object arrays of bytes): no numeric distance or cosine between them.
STRING_OUTPUT_KINDS = "OSU"


def _score_strings(model: str, reference: np.ndarray, candidate: np.ndarray) -> VariantAccuracy:
    """String outputs: top-1 agreement is the share of samples whose strings are all unchanged, and a value's
    difference is 0 or 1 (unchanged or not), so the abs-diff columns read the share of values changed."""
    same = np.asarray(reference == candidate, dtype=bool).reshape(len(reference), -1)
    return VariantAccuracy(
        model=model,
        samples=len(candidate),
        top1_agreement=float(same.all(axis=1).mean()) if len(same) else None,
        mean_abs_diff=float(1.0 - same.mean()) if same.size else 0.0,
        max_abs_diff=float(not same.all()),
    )


def check_class_labels(source: Path | str, labels: np.ndarray, scores: np.ndarray, model: str) -> None:
    """Labels that can score (N, C) class scores: one integer id per row, each in 0..C-1 (one-hot labels and ids
    beyond the output's classes broke the metrics with a traceback; other dtypes scored accuracy 0 for all)."""
    where = f"{source}: array 'labels'"
    if scores.ndim != 2 or scores.dtype.kind in STRING_OUTPUT_KINDS:
        raise QuantserveError(
            f"model '{model}' output ({scores.dtype}, shape {scores.shape}) is not class scores (samples, classes) "
            "to score labels by"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise QuantserveError(f"{where} has dtype {labels.dtype}; labels must be integer class ids (e.g. int64)")
    if labels.shape != scores.shape[:1]:
        raise QuantserveError(
            f"{where} has shape {labels.shape}; scoring the class scores {scores.shape} of model '{model}' needs one "
            f"class id per sample, shape {scores.shape[:1]} (one-hot labels: save their argmax)"
        )
    classes = scores.shape[1]
    outside = np.flatnonzero((labels < 0) | (labels >= classes))
    if outside.size:
        first = int(outside[0])
        raise QuantserveError(
            f"{where} has {outside.size} class id(s) outside 0..{classes - 1}, the {classes} classes model "
            f"'{model}' scores (first: {int(labels[first])} in row {first})"
        )


def set_drops(variants: list[VariantAccuracy], reference: str, output: str, classes: int | None) -> None:
    """Each variant's accuracy drop from the reference's; none where the reference's own accuracy is at chance for
    the output's `classes` (`metrics.chance_labels_note`, as optimize rules): a note says so instead."""
    ref = next(v for v in variants if v.model == reference)
    if ref.accuracy is None:
        return
    chance = metrics.chance_labels_note(output, ref.accuracy, classes, ref.samples) if classes else ""
    if chance:  # the labels are not this output's classes: a drop on them judges nothing
        for variant in variants:
            variant.notes += [chance] if variant.model != reference else []
        return
    for variant in variants:
        if variant.accuracy is None and variant.violations:  # its answers changed shape: not scored
            continue
        if variant.accuracy is None:
            raise InternalError(f"{variant.model}: accuracy missing beside a reference accuracy")
        variant.accuracy_drop_points = (ref.accuracy - variant.accuracy) * 100.0


def drift_accuracies(variants: list[VariantAccuracy], reference: str, output: str) -> None:
    """The headline output's accuracy as the drift measured it, where the headline scoring could not use the labels
    (per-token labels (N, T) of a tagger's (N, T, C) emissions; a TopK's first id): FP32's own (the reference's),
    each variant's and its drop, from each variant's drift record of `output`. The table read "accuracy –" and "the
    data has no labels" beside the verdict's accuracy drop 0.01 points on those labels (LAC tagger, session 56)."""
    ref = next(v for v in variants if v.model == reference)
    records = {v.model: (v.drift or {}).get(output) for v in variants if v.model != reference}
    measured = {model: r for model, r in records.items() if isinstance(r, dict) and r.get("accuracy") is not None}
    if ref.accuracy is not None or not measured:
        return
    ref.accuracy = float(next(iter(measured.values()))["fp32_accuracy"])
    ref.accuracy_drop_points = (
        0.0 if any(r.get("accuracy_drop_points") is not None for r in measured.values()) else None
    )
    for variant in variants:
        record = measured.get(variant.model)
        if record is not None:
            variant.accuracy = float(record["accuracy"])
            drop = record.get("accuracy_drop_points")  # none where FP32's own is at chance (`chance_notes` says so)
            variant.accuracy_drop_points = float(drop) if drop is not None else None
