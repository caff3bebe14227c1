"""A yes/no flag's decisions at a --label-threshold the user gave are judged as the flag's (`flag_agreement`): the
"values read as decisions … (information: --output-kind NAME=multilabel judges them)" note is for a dense output
whose values nobody judged at the threshold, and beside a judged flag it told the user to re-run with a kind that
judges what was already judged (seen in session 64's review: `value_decisions` ran wherever `decision_agreement`
was absent, and a flag's record names its agreement `flag_agreement`)."""

from __future__ import annotations

import numpy as np

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget


def _flag() -> np.ndarray:
    """(400, 1) yes/no scores: 300 near 1, 100 near 0."""
    rng = np.random.default_rng(0)
    return np.concatenate([rng.uniform(0.95, 1.0, 300), rng.uniform(0.0, 0.05, 100)]).astype(np.float32)[:, None]


def test_a_judged_flag_gets_no_value_decisions_note() -> None:
    reference = _flag()
    candidate = np.clip(reference + np.random.default_rng(1).normal(0, 0.002, reference.shape), 0, 1)
    report = measure_drift(
        {"live": reference}, {"live": candidate.astype(np.float32)}, {"live": "dense"}, DriftBudget(label_threshold=0.5)
    )
    record = report.outputs["live"]
    assert record["flag_agreement"] == 1.0
    assert "value_decision_agreement" not in record
    assert not [note for note in kind_notes(report.outputs) if "read as decisions" in note]


def test_a_dense_map_still_gets_the_note() -> None:
    """Per-position logits (attacut's word boundaries, session 41): every value a decision nobody judged."""
    rng = np.random.default_rng(2)
    reference = rng.normal(0, 3, (64, 40)).astype(np.float32)
    candidate = (reference + rng.normal(0, 0.05, reference.shape)).astype(np.float32)
    report = measure_drift({"b": reference}, {"b": candidate}, {"b": "dense"}, DriftBudget(label_threshold=0.0))
    assert "value_decision_agreement" in report.outputs["b"]
    assert [note for note in kind_notes(report.outputs) if "read as decisions" in note]
