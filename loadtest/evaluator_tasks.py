"""How `evaluate`'s headline scores an output its build was told is independent yes/no tasks (`--output-kind
NAME=multitask`, `optimizer.task_outputs`): as optimize judges it, by the worst task's decision agreement with the
reference at --label-threshold (`task_agreement_worst`, each task's in `task_agreements`); with 0/1 labels per task,
shape (samples, tasks), each task's accuracy at the same cut, their mean the headline's accuracy and the worst task's
beside it. Scored as a tagger's, ADMET-AI's 31 assays read a cosine without labels, and their labels per task were
refused as "needs one class id per sample" (session 60).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.accuracy_results import VariantAccuracy
from optimizer.drift import finite_in_fp32
from optimizer.drift_metrics import abs_difference_told
from optimizer.task_outputs import TASKS_KIND, task_accuracies, task_agreements
from quantserve.errors import QuantserveError


def tasks_headline(kind: str | None, task: str) -> bool:
    """Whether the headline output is scored as independent tasks: its kind is multitask and no --task says
    otherwise."""
    return task == "auto" and kind == TASKS_KIND


def score_tasks(
    model: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray | None,
    threshold: float,
    source: Path | str = "the data",
) -> VariantAccuracy:
    """Each task's decision agreement with `reference` at `threshold`, the worst also as `top1_agreement` (judged
    against the top-1 budget, as optimize judges it); with `labels`, each task's accuracy (`accuracy`: their mean)."""
    if reference.shape != candidate.shape:
        raise QuantserveError(
            f"model '{model}' output shape {candidate.shape} differs from the reference's {reference.shape}"
        )
    shares = task_agreements(reference, candidate, threshold)
    worst = int(np.argmin(shares))
    result = VariantAccuracy(
        model,
        len(candidate),
        top1_agreement=float(shares[worst]),
        task_agreements=[float(share) for share in shares],
        task_agreement_worst=float(shares[worst]),
        task_worst=worst,
    )
    result.mean_abs_diff, result.max_abs_diff = abs_difference_told(*finite_in_fp32("", reference, candidate)[:2])
    if labels is not None:
        accuracies = task_accuracies(reference, candidate, task_labels(source, labels, reference, model), threshold)
        _set_accuracies(result, accuracies)
    return result


def _set_accuracies(result: VariantAccuracy, accuracies: np.ndarray) -> None:
    """The tasks' accuracies on `result`: each (None for a task no row labels), their mean and the worst."""
    result.task_accuracies = [None if np.isnan(a) else float(a) for a in accuracies]
    if np.isnan(accuracies).all():
        return
    result.accuracy = float(np.nanmean(accuracies))
    result.task_accuracy_worst = float(np.nanmin(accuracies))


def task_labels(source: Path | str, labels: np.ndarray, scores: np.ndarray, model: str) -> np.ndarray:
    """`labels` where they score `scores`' tasks: integer, one 0/1 answer per task, (samples, tasks), negative for
    unlabelled; one line naming the shape they need otherwise."""
    values = labels[labels >= 0] if np.issubdtype(labels.dtype, np.integer) else labels
    if labels.shape == scores.shape and np.issubdtype(labels.dtype, np.integer) and np.isin(values, (0, 1)).all():
        return labels
    raise QuantserveError(
        f"{source}: array 'labels' ({labels.dtype}, shape {labels.shape}) cannot score model '{model}''s "
        f"{scores.shape[1] if scores.ndim > 1 else 1} tasks ({TASKS_KIND}): they need one 0/1 answer per task, "
        f"integer, shape {scores.shape} (negative: unlabelled)"
    )
