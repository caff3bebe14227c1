"""Landmarks in pixels — (N, 63) = 21 × (x, y, z) of a 224² crop, MediaPipe's hand model — commit any softmax to the
extreme landmark and were read as a classifier's raw logits, judged by that argmax's top-1 agreement: a build moving
every landmark by pixels passed. Interleaved coordinates (`row_kinds.coordinate_tuples`) now read dense, judged per
value; a classifier's logits still read as classification."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.row_kinds import classification_or_embedding, coordinate_tuples

ROWS = 400
POINTS = 21


def _hand_landmarks(seed: int = 0) -> np.ndarray:
    """(ROWS, 63) float32: one hand-like template of 21 points (a wrist and five fingers of four joints), rotated,
    scaled and moved over the rows, in pixels of a 224² crop; z a few pixels, signed, grows towards the fingertips."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(-0.6, 0.6, 5)
    joints = np.arange(1, 5) * 18.0
    fingers = np.stack([np.outer(joints, np.sin(angles)), -np.outer(joints, np.cos(angles))], axis=-1)
    template = np.concatenate([np.zeros((1, 2)), fingers.transpose(1, 0, 2).reshape(-1, 2)])  # (21, 2)
    turn = rng.uniform(-1.6, 1.6, ROWS)
    rotation = np.stack([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]).transpose(2, 0, 1)
    scale = rng.uniform(0.8, 1.2, (ROWS, 1, 1))
    centre = rng.uniform([90.0, 120.0], [140.0, 150.0], (ROWS, 1, 2))
    xy = scale * np.einsum("rij,pj->rpi", rotation, template) + centre + rng.normal(0, 1.0, (ROWS, POINTS, 2))
    z = -np.linspace(0, 20, POINTS) * scale[:, :, 0] + rng.normal(0, 2.0, (ROWS, POINTS))
    return np.concatenate([xy, z[..., None]], axis=-1).reshape(ROWS, -1).astype(np.float32)


def _classifier_logits(classes: int = 10, seed: int = 1) -> np.ndarray:
    """(ROWS, classes) raw logits of a linear classifier over noisy clusters, one per class, the digits demo's kind."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3.0, (classes, 16))
    truth = rng.integers(0, classes, ROWS)
    features = centres[truth] + rng.normal(0, 1.0, (ROWS, 16))
    return (features @ centres.T / 4.0).astype(np.float32)


def test_landmarks_in_pixels_read_dense_not_as_logits() -> None:
    landmarks = _hand_landmarks()
    assert np.unique(landmarks.argmax(axis=1)).size >= 3  # the argmax varies: it passed as a classifier's answers
    assert coordinate_tuples(landmarks.astype(np.float64))
    assert classification_or_embedding(landmarks, None) == "dense"
    assert infer_output_kinds({"Identity": landmarks}) == {"Identity": "dense"}


def test_landmarks_moved_by_pixels_are_refused() -> None:
    """Every landmark moved by several pixels (the extreme one kept extreme) fails a per-value budget."""
    landmarks = _hand_landmarks()
    moved = landmarks + np.random.default_rng(2).normal(0, 6.0, landmarks.shape).astype(np.float32)
    moved[np.arange(ROWS), landmarks.argmax(axis=1)] += 50.0  # the argmax held on every row
    kinds = infer_output_kinds({"Identity": landmarks})
    report = measure_drift({"Identity": landmarks}, {"Identity": moved}, kinds, DriftBudget())
    assert report.violations
    assert report.outputs["Identity"]["kind"] == "dense"


def test_a_classifier_s_logits_stay_classification() -> None:
    for classes in (10, 12, 20):
        logits = _classifier_logits(classes)
        assert not coordinate_tuples(logits.astype(np.float64))
        assert classification_or_embedding(logits, None) == "classification"
        assert infer_output_kinds({"logits": logits}) == {"logits": "classification"}
