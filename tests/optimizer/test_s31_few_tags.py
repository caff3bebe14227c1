"""A tags head of few sigmoid classes, several on per row, is read multilabel (optimizer.row_kinds; issue 9,
session 31).

A 5-sigmoid tags head (N, 5) with about 2.3 tags on per row was read `classification` (top-1 agreement): "most of a
row's classes plainly off (< 0.1)" cannot hold with 2-3 of 5 on, so tags flipping at 0.5 under the top one passed.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds

ROWS, TAGS = 400, 5


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-values))).astype(np.float32)


def _tag_logits(confidence: float, seed: int = 0) -> np.ndarray:
    """Each of 5 tags on with probability 0.46 (2.3 a row), its logit about ±`confidence`."""
    rng = np.random.default_rng(seed)
    on = rng.random((ROWS, TAGS)) < 0.46
    return np.where(on, rng.normal(confidence, 1.0, on.shape), rng.normal(-confidence, 1.0, on.shape))


@pytest.mark.parametrize("confidence", [3.0, 2.0])
def test_a_five_tag_head_with_several_on_is_multilabel_and_flipped_tags_refuse(confidence: float) -> None:
    logits = _tag_logits(confidence)
    fp32 = _sigmoid(logits)
    assert np.mean((fp32 >= 0.5).sum(axis=1)) > 2.0
    flipped = logits.copy()
    weakest, top = np.argsort(logits, axis=1)[:, 0], logits.max(axis=1)
    rows = np.flatnonzero(top > 1.0)[::10]
    flipped[rows, weakest[rows]] = top[rows] / 2  # an off tag turned on under the top one, in a tenth of the rows
    kinds = infer_output_kinds({"tags": fp32})
    assert kinds == {"tags": "multilabel"}
    report = measure_drift({"tags": fp32}, {"tags": _sigmoid(flipped)}, kinds, DriftBudget())
    assert report.outputs["tags"]["top_class_agreement"] == 1.0
    assert not report.holds
    assert report.violations[0].metric == "label_set_agreement"


def test_a_sigmoid_single_label_head_stays_a_classification() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(-3.0, 1.0, (ROWS, TAGS))
    logits[np.arange(ROWS), rng.integers(0, TAGS, ROWS)] = rng.normal(3.0, 1.0, ROWS)
    assert infer_output_kinds({"scores": _sigmoid(logits)}) == {"scores": "classification"}


def test_coordinates_in_the_unit_range_stay_dense() -> None:
    rng = np.random.default_rng(4)
    coordinates = np.clip(rng.normal(0.5, 0.15, (ROWS, 10)), 0.0, 1.0).astype(np.float32)
    assert infer_output_kinds({"landmarks": coordinates}) == {"landmarks": "dense"}
