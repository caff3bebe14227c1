"""BlazePose's segmentation output is a mask's raw logits, (N, 256, 256, 1): read as a dense map it was judged value
for value, and a refusal said nothing of `soft_mask`, which cuts logits at 0. Through a sigmoid its values read as a
mask's: the line now names the override. A heatmap's logits (a few small peaks) and a positive map (a depth in
metres) get no such line."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.soft_masks import mask_doubt

SAMPLES = 12
SIDE = 64


def _person_logits(seed: int = 0) -> np.ndarray:
    """(SAMPLES, SIDE, SIDE, 1): a person-shaped ellipse per sample, logits about +8 inside and -8 outside."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    maps = []
    for _ in range(SAMPLES):
        cy, cx = rng.uniform(20, 44, 2)
        inside = ((y - cy) / 22) ** 2 + ((x - cx) / 12) ** 2 < 1
        maps.append(np.where(inside, 8.0, -8.0) + rng.normal(0, 1.5, (SIDE, SIDE)))
    return np.stack(maps)[..., None].astype(np.float32)


def _heatmap_logits(seed: int = 1) -> np.ndarray:
    """(SAMPLES, SIDE, SIDE, 1): the logits of Gaussian peaks of 3 px over a background of -6."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    maps = []
    for _ in range(SAMPLES):
        peak = np.zeros((SIDE, SIDE))
        for cy, cx in rng.uniform(5, 59, (3, 2)):
            peak = np.maximum(peak, np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 18.0))
        maps.append(-6.0 + 10.0 * peak)
    return np.stack(maps)[..., None].astype(np.float32)


def test_mask_logits_read_dense_name_soft_mask() -> None:
    logits = _person_logits()
    assert infer_output_kinds({"segmentation": logits}) == {"segmentation": "dense"}
    assert "--output-kind segmentation=soft_mask" in mask_doubt("segmentation", "dense", logits)


def test_refusal_of_mask_logits_carries_the_override() -> None:
    logits = _person_logits()
    moved = logits + np.random.default_rng(2).normal(0, 4.0, logits.shape).astype(np.float32)
    report = measure_drift({"seg": logits}, {"seg": moved}, {"seg": "dense"}, DriftBudget())
    assert report.violations
    assert any("--output-kind seg=soft_mask" in (violation.hint or "") for violation in report.violations)


def test_heatmap_and_positive_maps_are_not_doubted() -> None:
    assert mask_doubt("heat", "dense", _heatmap_logits()) == ""
    depth = np.abs(_person_logits()) + 1.0  # metres: all positive, all "committed" through a sigmoid
    assert mask_doubt("depth", "dense", depth) == ""
    boxes = np.random.default_rng(4).normal(0.0, 60.0, (SAMPLES, 2304, 16)).astype(np.float32)  # an SSD's, in pixels
    assert mask_doubt("boxes", "dense", boxes) == ""
