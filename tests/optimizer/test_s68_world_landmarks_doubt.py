"""BlazePose's world landmarks (N, 117) = 39 × (x, y, z) in metres about the hips move together too weakly to read
as coordinates (same-coordinate columns 0.19), so they were read as an embedding and refused on cosine with no word
of `dense`. The embedding's line now says its columns move together by their place in a tuple and names the
override; an embedding's features, which have no period, get no such line."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.kind_doubt import kind_doubt
from optimizer.output_kinds import infer_output_kinds
from optimizer.row_kinds import coordinate_tuples

ROWS = 320
POINTS = 39


def _world_landmarks(seed: int = 0) -> np.ndarray:
    """(ROWS, 117): a body of 39 points in metres about the hips, each point moving mostly on its own (limbs in
    different poses) with a weak shared sway of the whole body on each axis."""
    rng = np.random.default_rng(seed)
    body = rng.uniform(-0.8, 0.8, (POINTS, 3))
    sway = rng.normal(0, 0.1, (ROWS, 1, 3))
    own = rng.normal(0, 0.2, (ROWS, POINTS, 3))
    return (body + sway + own).reshape(ROWS, -1).astype(np.float32)


def _embedding(seed: int = 1, width: int = 384) -> np.ndarray:
    """(ROWS, width): clustered sentence-like features through a random projection: correlated columns, no period."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (12, 48))
    features = centres[rng.integers(0, 12, ROWS)] + rng.normal(0, 0.5, (ROWS, 48))
    return np.tanh(features @ rng.normal(0, 0.3, (48, width))).astype(np.float32)


def test_weakly_moving_world_landmarks_read_as_embedding_name_dense() -> None:
    landmarks = _world_landmarks()
    assert not coordinate_tuples(landmarks.astype(np.float64))  # too weak to read dense outright
    assert infer_output_kinds({"world": landmarks}) == {"world": "embedding"}
    doubt = kind_doubt("world", "embedding", landmarks)
    assert "--output-kind world=dense" in doubt
    assert "columns 3 apart move together" in doubt


def test_refusal_of_world_landmarks_carries_the_override() -> None:
    landmarks = _world_landmarks()
    moved = landmarks + np.random.default_rng(3).normal(0, 0.3, landmarks.shape).astype(np.float32)
    kinds = infer_output_kinds({"world": landmarks})
    report = measure_drift({"world": landmarks}, {"world": moved}, kinds, DriftBudget())
    assert report.violations
    assert any("--output-kind world=dense" in (violation.hint or "") for violation in report.violations)


def test_an_embedding_without_a_period_is_not_doubted() -> None:
    for seed in range(5):
        embedding = _embedding(seed)
        assert infer_output_kinds({"emb": embedding}) == {"emb": "embedding"}
        assert kind_doubt("emb", "embedding", embedding) == ""
