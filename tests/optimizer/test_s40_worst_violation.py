"""A refusal names the worst violation, not the first output's, and the others beside it: XFeat's line named its
descriptors' worst channel correlation 0.9738 (budget 0.98) and hid its keypoints' 0.8623, the output whose task broke
(session 40)."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.verify import drift_refusal


def _maps(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(32, 4, 8, 8)).astype(np.float32)


def test_the_worst_miss_comes_first_whatever_the_output_order() -> None:
    rng = np.random.default_rng(0)
    feats, keypoints = _maps(1), _maps(2)
    slightly = feats + 0.2 * rng.normal(size=feats.shape).astype(np.float32)  # correlation just under 0.98
    badly = keypoints + 0.6 * rng.normal(size=keypoints.shape).astype(np.float32)  # far under it
    reference = {"feats": feats, "keypoints": keypoints}
    candidate = {"feats": slightly, "keypoints": badly}
    kinds = {"feats": "dense", "keypoints": "dense"}
    report = measure_drift(reference, candidate, kinds, DriftBudget())
    assert {v.output for v in report.violations} == {"feats", "keypoints"}
    assert report.violations[0].output == "keypoints"
    line = str(drift_refusal(report.to_dict()))
    assert line.index("output 'keypoints'") < line.index("output 'feats'"), line
    assert " more: " in line
