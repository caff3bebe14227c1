"""A 2-D regression whose few values have different units is dense, not a classifier's logits judged by its argmax
(optimizer.row_kinds.shared_scale in classification_or_embedding's raw-logits branch; helper fk's report)."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds

RNG = np.random.default_rng(292)


def _regression(rows: int = 400) -> np.ndarray:
    """(N, 3) values of std about 1, 30 and 1000, all changing sign: the softmax commits to whichever large value is
    up, and the argmax takes all three."""
    return np.stack([scale * RNG.normal(size=rows) for scale in (1.0, 30.0, 1000.0)], axis=1).astype(np.float32)


def _judged(reference: np.ndarray, candidate: np.ndarray) -> tuple[str, list[str]]:
    """The kind measure_drift infers (default budget, no overrides) and the metrics it refuses on."""
    report = measure_drift({"out": reference}, {"out": candidate.astype(np.float32)}, {}, DriftBudget())
    return report.outputs["out"]["kind"], [violation.metric for violation in report.violations]


def test_a_regression_in_different_units_is_dense_and_a_flat_lined_value_is_refused() -> None:
    values = _regression()
    assert infer_output_kinds({"prediction": values}) == {"prediction": "dense"}
    flat = values.copy()
    flat[:, 0] = values[:, 0].mean()  # its first value a constant: judged by argmax agreement, it passed
    kind, refused = _judged(values, flat)
    assert kind == "dense" and "channel_correlation_worst" in refused
    faithful = values + RNG.normal(size=values.shape) * values.std(axis=0) * 0.005
    assert _judged(values, faithful) == ("dense", [])


def test_a_classifiers_raw_logits_stay_classification() -> None:
    """A 10-class head, one class on 70 % of the rows and some on a few: its logits share one unit."""
    rows, classes = 2000, 10
    shares = np.r_[0.7, 0.1, 0.08, 0.05, 0.03, 0.02, 0.01, 0.005, 0.003, 0.002]
    answers = RNG.choice(classes, size=rows, p=shares / shares.sum())
    logits = RNG.normal(0.0, 1.5, (rows, classes)) + RNG.normal(0.0, 2.0, (rows, 1))
    logits[np.arange(rows), answers] += 6.0
    assert infer_output_kinds({"logits": logits.astype(np.float32)}) == {"logits": "classification"}
