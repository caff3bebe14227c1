"""A kind the user types is judged only as typed: `--output-kind frames=sequence` on per-frame class logits whose
classes win by rises 5× apart still had its columns judged as quantities too (session 32's both-ways reading), and a
build keeping every answer was refused on a column's correlation."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds, parse_output_kinds
from optimizer.row_kinds import win_rise_ratio


def _frames(rows: int = 64) -> np.ndarray:
    """(N, 40, 3) per-frame class logits: class 0 the default, class 1 firing by 10, class 2 raised by 2.5 and firing
    by 2.5 more (its wins 5× smaller than class 1's: inferred, judged both ways)."""
    rng = np.random.default_rng(7)
    fire = rng.choice(3, size=(rows, 40), p=[0.7, 0.2, 0.1])
    logits = rng.normal(0.0, 1.0, (rows, 40, 3))
    logits[..., 0] += 4.0
    logits[..., 1] += 10.0 * (fire == 1)
    logits[..., 2] += 2.5 + 2.5 * (fire == 2)
    return logits.astype(np.float32)


def _answers_kept(frames: np.ndarray) -> np.ndarray:
    """Class 1's values where it loses mirrored, kept under the winner: every answer the same, class 1's column not."""
    moved = frames.copy()
    losing = frames.argmax(axis=-1) != 1
    mirrored = np.minimum(2 * frames[..., 1].mean() - frames[..., 1], frames.max(axis=-1) - 0.5)
    moved[..., 1] = np.where(losing, mirrored, frames[..., 1])
    return moved


def test_a_typed_sequence_is_judged_only_as_a_sequence() -> None:
    frames = _frames()
    assert 3.0 < win_rise_ratio(frames[:16].reshape(-1, 3).astype(np.float64)) < 10.0
    moved = _answers_kept(frames)
    inferred = infer_output_kinds({"frames": frames})
    assert "columns" in measure_drift({"frames": frames}, {"frames": moved}, inferred, DriftBudget()).outputs["frames"]
    typed = infer_output_kinds({"frames": frames}, parse_output_kinds(["frames=sequence"]))
    assert typed == {"frames": "sequence"}
    report = measure_drift({"frames": frames}, {"frames": moved}, typed, DriftBudget())
    record = report.outputs["frames"]
    assert record["sequence_agreement"] == 1.0 and "columns" not in record
    assert report.holds, [violation.line() for violation in report.violations]
