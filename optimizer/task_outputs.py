"""Outputs of independent yes/no tasks, one column each (`--output-kind NAME=multitask`, never inferred): a
multi-task assay model's Sigmoid head, every column a question of its own. A tagger's answer is its whole label set,
so `multilabel` judges the share of samples whose set is unchanged; over independent tasks that share compounds each
task's flips (31 tasks flipping 0.3 % each change 9 % of the sets). ADMET-AI's 31 assays were refused at label-set
agreement 0.9104 while every task kept ≥ 0.9928 of its decisions (session 60). A multitask output is judged by its
worst task's decision agreement at --label-threshold (logits at its logit, as label sets are cut), against the top-1
budget; the label-set and mean decision agreement are recorded beside it as information. A `multilabel` refusal on
its label sets whose every class holds on its own names this kind (`tasks_doubt`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from optimizer.soft_masks import cut_words, mask_threshold
from optimizer.typed_kinds import is_typed
from quantserve.metrics import beyond

TASKS_KIND = "multitask"
TASK_METRIC = "task_agreement_worst"  # budgeted for a multitask output; recorded for a multilabel one


def task_agreements(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> np.ndarray:
    """Each column's share of samples whose decision (value ≥ the cut: `threshold`, or its logit for logits) INT8
    keeps; columns are every value of a sample but the first axis."""
    cut, _ = mask_threshold(reference, threshold)
    rows = (len(reference), int(np.prod(reference.shape[1:])))
    kept = (reference >= cut).reshape(rows) == (candidate >= cut).reshape(rows)
    return kept.mean(axis=0) if len(reference) else np.ones(rows[1])


def task_accuracies(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Each task's share of its labelled rows `candidate` decides right at the cut `task_agreements` reads
    `reference` at: 0/1 `labels` of its (samples, tasks) shape, a negative one unlabelled; NaN for a task no row
    labels. `evaluate`'s headline accuracy of a multitask output is their mean, its worst task's beside it."""
    cut, _ = mask_threshold(reference, threshold)
    rows = (len(reference), int(np.prod(reference.shape[1:])))
    truth, labelled = labels.reshape(rows) == 1, labels.reshape(rows) >= 0
    right = np.count_nonzero(((candidate.reshape(rows) >= cut) == truth) & labelled, axis=0)
    counts = np.count_nonzero(labelled, axis=0)
    return np.where(counts > 0, right / np.maximum(counts, 1), np.nan)


def task_metrics(reference: np.ndarray, candidate: np.ndarray, threshold: float, every: bool) -> dict[str, Any]:
    """The worst task's decision agreement and its column; with `every` (a multitask output's record) each task's."""
    shares = task_agreements(reference, candidate, threshold)
    if not shares.size:
        return {}
    worst = int(np.argmin(shares))
    record: dict[str, Any] = {TASK_METRIC: float(shares[worst]), "task_worst": worst, "tasks": int(shares.size)}
    return {**record, "task_agreements": [float(share) for share in shares]} if every else record


def task_where(record: Mapping[str, Any]) -> str:
    """E.g. "task 17 of 31, at --label-threshold 0.5": where a multitask output's worst task lies."""
    threshold = record.get("label_threshold")
    cut = record.get("label_cut")
    at = cut_words(threshold, cut, bool(record.get("label_logits"))) if threshold is not None else ""
    return ", ".join(words for words in (f"task {record['task_worst']} of {record['tasks']}", at) if words)


def tasks_doubt(name: str, kind: str, record: Mapping[str, Any], limit: float, failed: Iterable[str]) -> str:
    """The line a `multilabel` refusal on its label sets carries where each class, taken alone, holds `limit` (the
    top-1 budget): its classes may be independent tasks, each read on its own, and `--output-kind NAME=multitask`
    judges them so. Nothing where the user typed multilabel, a class misses on its own, or one class is all there is."""
    worst = record.get(TASK_METRIC)
    if kind != "multilabel" or is_typed(kind) or "label_set_agreement" not in set(failed) or worst is None:
        return ""
    if int(record.get("tasks") or 0) < 2 or beyond(float(worst), limit, True):  # measured to miss on its own
        return ""
    return (
        f"each of its {record['tasks']} labels holds on its own (worst {float(worst):.4f}, label "
        f"{record['task_worst']}): if they are independent tasks rather than one label set, judge them each with "
        f"--output-kind {name}={TASKS_KIND}"
    )
