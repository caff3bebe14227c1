"""A mask's and a class map's answers judged: the share of values unchanged and the worst class IoU."""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.drift_budget import UnsetThreshold
from quantserve import metrics

MASK_MIN_CLASS_VALUES = 100  # a class with fewer FP32 values in a mask is too small for its IoU to mean anything
UNSURE = -1  # a class map's answer where no class reaches --label-threshold


def class_map_metrics(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """A class map's answers judged as a mask is: the class each position takes, or, with --label-threshold T given,
    the class whose probability reaches T there, else "unsure" (UNSURE) — as the map is used: MTCNN keeps PNet's
    windows whose face probability reaches 0.6, and judged at the argmax 7 % of those candidate windows could flip
    unseen. The classes' IoU leaves "unsure" out: a band near the cut whose edge noise moves is no class."""
    if isinstance(threshold, UnsetThreshold):
        return mask_metrics(reference.argmax(axis=1), candidate.argmax(axis=1))
    fp32, int8 = (sure_answers(np.moveaxis(values, 1, -1), threshold) for values in (reference, candidate))
    return {**mask_metrics(fp32, int8, leave_out=UNSURE), "label_threshold": float(threshold)}


def sure_answers(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The class of each row (classes on the last axis; probabilities, else logits softmaxed) whose probability
    reaches `threshold`, else UNSURE."""
    if not scores.size:
        return np.zeros(scores.shape[:-1], dtype=np.int64)
    rows = metrics.as_probabilities(scores.reshape(-1, scores.shape[-1]))
    return np.where(rows.max(axis=1) >= threshold, rows.argmax(axis=1), UNSURE).reshape(scores.shape[:-1])


def mask_metrics(reference: np.ndarray, candidate: np.ndarray, leave_out: int | None = None) -> dict[str, Any]:
    """A label per value (a segmentation's argmax, (N, H, W) or (N, 1, H, W)): the share of values unchanged, and
    the worst IoU of a class between the two masks over the classes FP32 gives at least MASK_MIN_CLASS_VALUES
    values — a thin class can vanish while 99 % of the values stay. Whole-sample equality (ids) would refuse any
    mask in which one pixel of a boundary moved."""
    record: dict[str, Any] = {"value_agreement": float(np.mean(reference == candidate)) if reference.size else 1.0}
    classes, counts = np.unique(reference, return_counts=True)
    ious = {}
    for label in classes[(counts >= MASK_MIN_CLASS_VALUES) & (classes != leave_out)]:
        fp32, int8 = reference == label, candidate == label
        ious[label.item()] = float(np.count_nonzero(fp32 & int8) / np.count_nonzero(fp32 | int8))
    if ious:
        worst = min(ious, key=lambda label: ious[label])
        record.update(class_iou_worst=ious[worst], class_iou_worst_class=worst, classes_judged=len(ious))
    return record


LEVELS_DOUBT = 200  # more distinct values than a label map has classes (ADE20K 150, COCO-stuff 182): levels
DOUBT_ROWS = 8  # the first samples read for them


def levels_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Where an integer map read as a mask takes more distinct values than a label map has classes, the override
    that judges it as the quantity it may be; "" otherwise. A uint16 depth in millimetres was refused at "share of
    values unchanged 0.2032" for ±2 mm, with no word that --output-kind NAME=dense (correlation 0.99996) would read
    it (session 50)."""
    if kind != "mask":
        return ""
    levels = len(np.unique(values[:DOUBT_ROWS]))
    if levels <= LEVELS_DOUBT:
        return ""
    return (
        f"read as a label per position, but its first {min(len(values), DOUBT_ROWS)} samples take {levels} distinct "
        f"values, more than a label map has classes: if it is a quantity (a depth, a picture's levels), pass "
        f"--output-kind {name}=dense"
    )
