"""A CTC head's raw logits share one strong class prior (mostly blank), so its rows all point near their mean row:
Khmer OCR's (N, 127, 984) read `dense` by the per-position rule for values around a fixed point (median cosine 0.995
to the mean row), and an INT8 build losing 9 % of its decoded lines (0.911 of them the same) printed "budget holds"
at worst channel correlation 0.9862. Rows that are also a sequence's logits are a sequence; values in a unit stay
`dense` (the kelvin forecaster: `test_s32_alike_positions.py`)."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.position_kinds import alike_positions


def _ctc_logits(rng: np.random.Generator, n: int = 64, frames: int = 60, classes: int = 400) -> np.ndarray:
    """Raw logits: a shared prior (blank at +8, the rest -22..-12), a character winning by +30 on 30 % of frames."""
    prior = rng.uniform(-22.0, -12.0, classes)
    prior[0] = 8.0
    values = prior + rng.normal(0.0, 1.0, (n, frames, classes))
    samples, steps = np.nonzero(rng.random((n, frames)) < 0.3)
    values[samples, steps, rng.integers(1, classes, len(samples))] += 30.0
    return values.astype(np.float32)


def test_ctc_logits_sharing_a_prior_are_a_sequence() -> None:
    rng = np.random.default_rng(33)
    logits = _ctc_logits(rng)
    assert alike_positions(logits)  # what made it `dense`
    kinds = infer_output_kinds({"logits": logits})
    assert kinds == {"logits": "sequence"}
    broken = logits.copy()
    flipped = rng.random(logits.shape[:2]) < 0.02  # 2 % of frames' characters dropped to blank
    broken[flipped, 0] += 60.0
    report = measure_drift({"logits": logits}, {"logits": broken}, kinds, DriftBudget())
    assert not report.holds
    assert any(v.metric == "sequence_agreement" for v in report.violations), [v.line() for v in report.violations]
