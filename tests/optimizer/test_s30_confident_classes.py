"""A classifier used at a confidence threshold is judged by its answers there when --label-threshold is given (issue
9). malviz's malware classifier (answer benign or a family from probability 0.9, else uncertain) shipped at top-1
agreement 0.9933 while INT8 lowered its confidence across the board: that rule's answers agreed on 94.3 % of files.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget


def _logits(rows: int = 400, classes: int = 26) -> np.ndarray:
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 1.0, (rows, classes)).astype(np.float32)
    logits[np.arange(rows), rng.integers(0, classes, rows)] += rng.uniform(3.0, 9.0, rows).astype(np.float32)
    return logits


def test_confidence_lowered_keeps_top1_but_changes_answers_at_a_given_threshold() -> None:
    fp32 = _logits()
    int8 = (fp32 * 0.8).astype(np.float32)  # the same argmax everywhere, every row less sure
    kinds = {"probs": "classification"}
    unset = measure_drift({"probs": fp32}, {"probs": int8}, kinds, DriftBudget())
    assert unset.holds and "decision_agreement" not in unset.outputs["probs"]  # used by its argmax alone: as before
    given = measure_drift({"probs": fp32}, {"probs": int8}, kinds, DriftBudget(label_threshold=0.9))
    record = given.outputs["probs"]
    assert record["top1_agreement"] == 1.0 and record["decision_agreement"] < 0.95, record
    assert not given.holds
    line = given.violations[0].line("classification")
    assert line.startswith(
        "output 'probs' (classification): share of clear decisions unchanged (at --label-threshold 0.9; "
    ), line


def test_a_faithful_copy_holds_at_a_given_threshold() -> None:
    fp32 = _logits()
    noisy = fp32 + np.random.default_rng(4).normal(0.0, 0.002, fp32.shape).astype(np.float32)
    report = measure_drift({"p": fp32}, {"p": noisy}, {"p": "classification"}, DriftBudget(label_threshold=0.9))
    assert report.holds and report.outputs["p"]["decision_agreement"] == 1.0
