"""How far a candidate's answers agree with the reference's: top-1 class, multi-label class sets, exact values (ids,
labels), and the lower bound that a few rows' agreement supports.
"""

from __future__ import annotations

import math

import numpy as np


def top1_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples where both outputs pick the same class."""
    return float(np.mean(reference.argmax(axis=1) == candidate.argmax(axis=1)))


# how far past [0, 1] a probability may be computed: ONNX Runtime's Sigmoid answers 1.0000001 (one float32 ulp over 1)
# for large logits, and a range check without slack read MediaPipe's selfie map as logits, cut it at 0 where every
# pixel is on, and judged a broken INT8 mask IoU 1.0; logits stray far further (|x| of 0.5 or more)
PROBABILITY_SLACK = 1e-5


def probabilities(values: np.ndarray) -> bool:
    """Whether every value lies in [0, 1], within PROBABILITY_SLACK (scores, not logits or features)."""
    return bool(values.min() >= -PROBABILITY_SLACK and values.max() <= 1.0 + PROBABILITY_SLACK)


def label_set_agreement(reference: np.ndarray, candidate: np.ndarray, threshold: float = 0.5) -> tuple[float, float]:
    """Share of samples whose set of classes switched on (score ≥ `threshold`) is unchanged, and the share of
    (sample, class) decisions unchanged. Scores outside [0, 1] are logits: judged at the threshold's logit
    (0 for 0.5). The reference's scale is used for both, so a shift across the threshold counts."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.size and not probabilities(reference):
        threshold = math.log(threshold / (1.0 - threshold)) if 0.0 < threshold < 1.0 else 0.0
    same = (reference >= threshold) == (candidate >= threshold)
    if not len(reference):
        return 1.0, 1.0
    return float(np.mean(np.all(same.reshape(len(reference), -1), axis=1))), float(np.mean(same))


def agreement_lower_bound(share: float, samples: int, z: float = 1.645) -> float:
    """One-sided 95 % (z = 1.645) Wilson lower bound of an agreement rate `share` seen on `samples` rows:
    32 of 32 rows agreeing shows only that the rate is at least 0.92."""
    if samples <= 0:
        return 0.0
    z2 = z * z
    centre = share + z2 / (2 * samples)
    spread = z * math.sqrt(share * (1 - share) / samples + z2 / (4 * samples * samples))
    return max(0.0, (centre - spread) / (1 + z2 / samples))


def exact_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of samples (rows of axis 0) whose values are all identical: integer outputs (labels, ids)."""
    if reference.ndim == 0:
        return float(np.array_equal(reference, candidate))
    same = (reference == candidate).reshape(len(reference), -1)
    return float(np.mean(np.all(same, axis=1))) if len(reference) else 1.0
