"""A class id per sample (a classifier's ArgMax in its graph, a TopK's first index) is scored against integer labels
as its logits would be: FP32's and INT8's accuracy and the drop, judged by --max-accuracy-drop (session 50).

Judged by id agreement alone, a loosened --min-top1-agreement left a 3-point accuracy drop unjudged."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget

N = 400


def _classifier() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FP32 right on 90 % of the rows; INT8 wrong on 12 more of them."""
    labels = np.random.default_rng(0).integers(0, 10, N)
    fp32 = labels.copy()
    fp32[:40] = (fp32[:40] + 1) % 10
    int8 = fp32.copy()
    int8[40:52] = (int8[40:52] + 1) % 10
    return labels, fp32, int8


def test_an_argmax_output_s_accuracy_drop_is_judged() -> None:
    labels, fp32, int8 = _classifier()
    budget = DriftBudget(min_top1_agreement=0.95)  # the 0.97 id agreement passes it
    report = measure_drift({"cls": fp32}, {"cls": int8}, {"cls": "ids"}, budget, labels=labels)
    record = report.outputs["cls"]
    assert (record["fp32_accuracy"], record["accuracy"]) == (0.9, 0.87)
    (violation,) = report.violations
    assert violation.metric == "accuracy_drop_points" and violation.value == pytest.approx(3.0)


def test_a_top_k_s_first_index_is_scored_and_ids_of_other_shapes_are_not() -> None:
    labels, fp32, int8 = _classifier()
    others = (np.stack([fp32, fp32 + 10, fp32 + 20], axis=1), np.stack([int8, int8 + 10, int8 + 20], axis=1))
    values = np.tile(np.array([[3.0, 2.0, 1.0]], np.float32), (N, 1))
    reference, candidate = {"values": values, "indices": others[0]}, {"values": values, "indices": others[1]}
    report = measure_drift(reference, candidate, {"values": "dense", "indices": "ids"}, DriftBudget(), labels=labels)
    assert report.outputs["indices"]["accuracy_drop_points"] == pytest.approx(3.0)
    whole = measure_drift({"i": others[0]}, {"i": others[1]}, {"i": "ids"}, DriftBudget(), labels=labels)
    assert "accuracy" not in whole.outputs["i"]  # three ids a row, no ranking said: no class to score
