"""Classification metrics against labels: accuracy, macro precision/recall/F1, one-vs-rest AUC-ROC and AUC-PR, and
whether labels read at chance (then they are not the output's classes).

Definitions follow scikit-learn's (macro averages; one-vs-rest AUC-ROC by the rank statistic; AUC-PR as average
precision) and the tests check them against it, with no scikit-learn at run time.
"""

from __future__ import annotations

import math

import numpy as np

from quantserve.metrics.limits import FLOAT_SLACK


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def as_probabilities(scores: np.ndarray) -> np.ndarray:
    """Scores as class probabilities: kept if rows already are (non-negative, sum 1), else softmax."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.min() >= 0.0 and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3):
        return scores
    return softmax(scores)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels) == np.asarray(predicted)))


# labelled samples from which an accuracy at or below chance says the labels are not the output's classes
CHANCE_MIN_SAMPLES = 50


def labels_at_chance(fp32_accuracy: float, classes: int, samples: int) -> bool:
    """Whether FP32's own accuracy against integer labels, on `samples` rows of an output of `classes` classes, is at
    or below chance (1/classes) on CHANCE_MIN_SAMPLES or more: then the labels are not that output's truth (ids meant
    for a --metric, or another head's), and an accuracy drop on them judges nothing. A classifier these labels were
    made for answers well above a guess; at 50 samples a binary one right 70 % of the time reads 0.5 or less with
    probability 0.002, and on fewer a sample is 2 points or more: too noisy to tell."""
    return classes >= 2 and samples >= CHANCE_MIN_SAMPLES and fp32_accuracy * classes <= 1.0 + FLOAT_SLACK


def chance_labels_note(output: str, fp32_accuracy: float, classes: int, samples: int) -> str:
    """The note an output gets where its labels are at chance (`labels_at_chance`), "" otherwise: optimize's and
    evaluate's words alike. The probe's 12 sound-class ids, given for its --metric, scored a 78-class head at
    0.0035 and passed "accuracy_drop_points 0 (budget 1)" without a word (session 55)."""
    if not labels_at_chance(fp32_accuracy, classes, samples):
        return ""
    return (
        f"output '{output}': FP32's own accuracy against the labels is {fp32_accuracy:.4f} on {samples} labelled "
        f"samples, at or below chance (1/{classes} = {1 / classes:.4f}): the labels are not this output's classes, "
        "so its accuracy drop was not budgeted (its agreement with FP32 still is); labels meant for a --metric "
        "alone: save them as floats (float labels are truth for a --metric alone)"
    )


def precision_recall_f1_macro(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    """Unweighted means over every class present in labels or predictions (0 where undefined)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    precisions, recalls, f1s = [], [], []
    for cls in np.union1d(labels, predicted):
        true_pos = float(np.sum((predicted == cls) & (labels == cls)))
        predicted_pos = float(np.sum(predicted == cls))
        actual_pos = float(np.sum(labels == cls))
        precision = true_pos / predicted_pos if predicted_pos else 0.0
        recall = true_pos / actual_pos if actual_pos else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return float(np.mean(precisions)), float(np.mean(recalls)), float(np.mean(f1s))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    for stop in range(1, len(values) + 1):
        if stop == len(values) or ordered[stop] != ordered[start]:
            ranks[order[start:stop]] = (start + stop + 1) / 2.0
            start = stop
    return ranks


def binary_auc_roc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U); NaN when only one class is present."""
    is_positive = np.asarray(is_positive, dtype=bool)
    positives, negatives = int(is_positive.sum()), int((~is_positive).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def average_precision(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision–recall curve as Σ (Rₙ − Rₙ₋₁) Pₙ over score thresholds (ties grouped)."""
    is_positive = np.asarray(is_positive, dtype=bool)
    positives = int(is_positive.sum())
    if positives == 0:
        return math.nan
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    sorted_scores, hits = np.asarray(scores)[order], is_positive[order]
    last_of_tie = np.r_[np.diff(sorted_scores) != 0, True]
    true_pos = np.cumsum(hits)[last_of_tie]
    predicted_pos = (np.arange(len(hits)) + 1)[last_of_tie]
    precision = true_pos / predicted_pos
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def one_vs_rest(metric: str, labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Macro mean of a binary metric ("auc_roc" or "auc_pr") over the classes present in `labels`."""
    binary = binary_auc_roc if metric == "auc_roc" else average_precision
    labels = np.asarray(labels)
    values = [binary(labels == cls, probabilities[:, int(cls)]) for cls in np.unique(labels)]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan
