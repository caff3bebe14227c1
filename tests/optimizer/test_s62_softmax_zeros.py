"""A saturated softmax's exact zeros are no sign of ReLU features (session 62, MEGnet).

mne-icalabel's MEGnet ends in a Softmax over 4 classes; on its held-out rows 72.5 % of the float32 values are exactly
0 (the softmax saturates) and each row sums to 1. Its INT8 refusal, deploy's warning, loadtest's verdict and the
report carried `zeros_doubt`: "read as per-class sigmoid scores although 72 % of its values are exactly 0, as a
ReLU's features are …: pass --output-kind merge_output=embedding" — for a graph without a Sigmoid, inviting a cosine
check of a 4-class classifier. Rows that each sum to 1 are a softmax's probabilities: no such line. Independent
sigmoid scores with as many zeros (BirdNET's location model, tests/optimizer/test_kinds_s22_scores.py) keep it."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.kind_doubt import kind_doubt, zeros_doubt
from optimizer.row_kinds import independent_scores


def _saturated_softmax(rows: int = 400, classes: int = 4, seed: int = 62) -> np.ndarray:
    """(rows, classes) float32 softmax of logits far apart: most values underflow to exactly 0, as MEGnet's do."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, size=(rows, classes))
    logits[np.arange(rows), rng.integers(0, classes, size=rows)] += 120.0
    logits[: rows // 4, 0] += 100.0  # some rows with two classes near: not every row one-hot
    shifted = np.exp((logits - logits.max(axis=1, keepdims=True)).astype(np.float32))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def test_a_saturated_softmax_is_not_doubted_as_sigmoid_scores_or_features() -> None:
    probs = _saturated_softmax()
    assert np.mean(probs == 0.0) > 0.5 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert zeros_doubt("merge_output", "classification", probs) == ""
    assert kind_doubt("merge_output", "classification", probs) == ""
    assert not independent_scores(probs.astype(np.float64))


def test_its_int8_refusal_says_nothing_of_sigmoid() -> None:
    fp32 = _saturated_softmax()
    int8 = fp32.copy()
    flipped = np.arange(0, 400, 10)  # 10 % of the answers moved to the next class
    int8[flipped] = np.roll(fp32[flipped], 1, axis=1)
    report = measure_drift({"merge_output": fp32}, {"merge_output": int8}, {}, DriftBudget())
    assert report.outputs["merge_output"]["kind"] == "classification" and not report.holds
    lines = [violation.line("classification") for violation in report.violations]
    assert lines and not any("sigmoid" in line or "--output-kind" in line for line in lines), lines
    assert "kind_doubt" not in report.outputs["merge_output"]


def test_independent_sigmoid_scores_with_many_zeros_keep_the_doubt() -> None:
    rng = np.random.default_rng(22)
    logits = rng.normal(-14.0, 8.0, size=(400, 300))
    scores = np.where(logits < -17.5, 0.0, 1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    assert np.mean(scores == 0.0) > 0.25
    assert "per-class sigmoid scores" in zeros_doubt("scores", "multilabel", scores)
