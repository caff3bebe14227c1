"""A refusal on decoded-sequence agreement says what was decoded and how to judge otherwise: FSMN-VAD's frame
posteriors over 248 states (state 0 silence) were read as CTC and refused at sequence agreement 0.56, 96 % of its
frames' states kept, and the line named neither the reading nor a way round."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget


def _frames(changed_share: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, C) per-frame logits, and a copy with `changed_share` of the frames' classes moved one along."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((40, 60, 12)) * 3).astype(np.float32)
    moved = logits.copy()
    frames = rng.random((40, 60)) < changed_share
    moved[frames] = np.roll(moved[frames], 1, axis=-1)
    return logits, moved


def test_a_sequence_refusal_names_the_reading_and_the_overrides() -> None:
    logits, moved = _frames(0.04)
    report = measure_drift({"logits": logits}, {"logits": moved}, {"logits": "sequence"}, DriftBudget())
    line = next(v.line("sequence") for v in report.violations if v.metric == "sequence_agreement")
    assert "read as CTC-style sequences" in line
    assert "per-position agreement 0.9" in line
    assert "--output-kind logits=token_classification" in line and "--metric" in line
    assert "quantities, not classes (a score, an offset, a length), --output-kind logits=dense" in line


def test_no_such_line_where_sequences_hold() -> None:
    logits, moved = _frames(0.0)
    report = measure_drift({"logits": logits}, {"logits": moved}, {"logits": "sequence"}, DriftBudget())
    assert report.holds and "kind_doubt" not in report.outputs["logits"]
