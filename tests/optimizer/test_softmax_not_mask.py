"""A softmax per position (a CTC head's (N, T, C)) is a sequence, never a one-channel soft mask (issue 9).

PP-OCRv4's recognizer, (N, 40, 6625) probabilities, mostly 0 with one solid 1 per position, read as a (N, H, W) map
in [0, 1] that is committed and solid: judged as a soft mask on no sample (no mask reached 100 values), it shipped an
INT8 model whose decoded text agreed with FP32's on 0.8971 of the lines (tests/realmodels).
"""

from __future__ import annotations

import numpy as np

from optimizer.output_kinds import infer_kind


def ctc_probabilities(rows: int = 32, positions: int = 40, classes: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (rows, positions, classes))
    picked = rng.integers(0, classes, (rows, positions))
    np.put_along_axis(logits, picked[..., None], 40.0, axis=2)  # one class commits at every position
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).astype(np.float32)


def test_a_committed_softmax_per_position_is_a_sequence_not_a_soft_mask() -> None:
    assert infer_kind(ctc_probabilities(), None) == "sequence"


def test_a_sigmoid_mask_is_still_a_soft_mask() -> None:
    mask = np.zeros((8, 64, 64), dtype=np.float32)
    mask[:, 16:48, 16:48] = 0.999
    assert infer_kind(mask, None) == "soft_mask"
