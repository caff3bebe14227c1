"""A per-step class softmax padded with zeros past its end reads as a soft mask; its lines say so and name
--output-kind NAME=token_classification (probe 65D: SLANet-plus's (N, 1024, 50) structure output judged as a soft
mask, "INT8 turns on a channel FP32 never does (only 1 sample's mask covers 100 values …)" meant nothing to a
table-OCR user)."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.soft_masks import mask_doubt


def _padded_steps(rows: int = 6, steps: int = 64, classes: int = 12, seed: int = 0) -> np.ndarray:
    """Peaked softmax rows for the first 20 steps of each row, zeros after (a decoder padded to `steps`)."""
    rng = np.random.default_rng(seed)
    values = np.zeros((rows, steps, classes), dtype=np.float32)
    for row in range(rows):
        logits = rng.normal(size=(20, classes)) + 12.0 * np.eye(classes)[rng.integers(0, classes, 20)]
        values[row, :20] = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return values


def test_a_padded_step_softmax_read_as_a_mask_names_token_classification() -> None:
    fp32 = _padded_steps()
    assert infer_output_kinds({"structure": fp32}) == {"structure": "soft_mask"}  # as SLANet-plus's read
    hint = mask_doubt("structure", "soft_mask", fp32)
    assert hint == (
        "read as a mask; yet its last axis of 12 sums to 1 at every position not all 0, as one class distribution "
        "per step does (a decoder's, padded past its end): if each position is a step's or a token's classes, pass "
        "--output-kind structure=token_classification"
    )
    int8 = fp32.copy()
    int8[:, 20:22, 3] = 0.9  # INT8 runs on past FP32's end
    report = measure_drift({"structure": fp32}, {"structure": int8}, {"structure": "soft_mask"}, DriftBudget())
    assert report.violations and all(v.hint == hint for v in report.violations)


def test_a_mask_is_not_said_to_be_a_step_softmax() -> None:
    mask = np.zeros((4, 32, 32), dtype=np.float32)
    mask[:, 8:24, 8:24] = 1.0
    assert "token_classification" not in mask_doubt("mask", "soft_mask", mask)
