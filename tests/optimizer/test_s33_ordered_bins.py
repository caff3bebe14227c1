"""A head whose classes are bins of one ordered quantity (CREPE's 360 pitch bins, decoded around the peak) was refused
by top-1 agreement 0.9648 with nothing said, while its decoded pitch moved 2.1 cents at most and `=dense` shipped
it: the refusal line now says the peaks are smooth and names the override; a classifier's refusal does not."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds


def _pitch_bins(centres: np.ndarray, bins: int = 64) -> np.ndarray:
    """Sigmoid-like scores over `bins` ordered bins, a Gaussian of 1.25 bins around each row's centre."""
    axis = np.arange(bins)[None, :]
    return (0.002 + 0.99 * np.exp(-((axis - centres[:, None]) ** 2) / (2 * 1.25**2))).astype(np.float32)


def test_a_smooth_peaked_head_refused_as_classes_names_dense() -> None:
    rng = np.random.default_rng(33)
    centres = rng.uniform(3, 60, 500)
    expected = _pitch_bins(centres)
    moved = centres + np.where(rng.random(500) < 0.05, 0.9, 0.0)  # 5 % of peaks one bin over
    got = _pitch_bins(moved)
    kinds = infer_output_kinds({"pitch": expected})
    assert kinds == {"pitch": "classification"}
    report = measure_drift({"pitch": expected}, {"pitch": got}, kinds, DriftBudget())
    line = next(v for v in report.violations if v.metric == "top1_agreement").line()
    assert "as bins of one ordered quantity (pitch, angle, depth) decoded around the peak do" in line, line
    assert line.endswith("if so, name --output-kind pitch=dense)"), line


def test_a_classifiers_refusal_says_nothing_of_bins() -> None:
    """Guard: unordered classes, their top class's neighbours holding little, keep the plain refusal."""
    rng = np.random.default_rng(34)
    logits = rng.normal(0.0, 1.0, (500, 40)).astype(np.float32)
    logits[np.arange(500), rng.integers(0, 40, 500)] += 8.0
    got = logits + rng.normal(0.0, 2.0, logits.shape).astype(np.float32)
    kinds = infer_output_kinds({"logits": logits})
    assert kinds == {"logits": "classification"}
    report = measure_drift({"logits": logits}, {"logits": got}, kinds, DriftBudget())
    assert report.violations and all("ordered quantity" not in v.line() for v in report.violations)
