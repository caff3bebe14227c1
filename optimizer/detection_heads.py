"""Whether a 3-D output is a detector's head: 4 box channels beside K score channels along the smaller of axes 1
and 2. Kind inference (`optimizer.output_kinds`) asks it, and the drift measures (`optimizer.drift_metrics`,
`optimizer.channel_metrics`, `optimizer.decoded_heads`) read the boxes and scores where it found them.
"""

from __future__ import annotations

import numpy as np

from quantserve.metrics import probabilities

DETECTION_SPAN_RATIO = 10.0
BOX_CHANNELS = 4


def detection_axis(values: np.ndarray) -> int:
    """The axis holding 4 box rows + K score rows: the smaller of axes 1 and 2 (anchors outnumber channels)."""
    return 1 if values.shape[1] <= values.shape[2] else 2


def pixel_boxes(values: np.ndarray) -> bool:
    """A 3-D (N, 4+K, A) or (N, A, 4+K) output whose first four channels span at least DETECTION_SPAN_RATIO times the
    median span of the rest: box coordinates in pixels beside scores (`is_detection`'s first rule)."""
    axis = detection_axis(values)
    if values.shape[axis] < BOX_CHANNELS + 1 or values.size == 0:
        return False
    others = tuple(a for a in range(values.ndim) if a != axis)  # reduced in place: no float64 copy of the output
    spans = values.max(axis=others).astype(np.float64) - values.min(axis=others).astype(np.float64)
    return bool(spans[:BOX_CHANNELS].min() >= DETECTION_SPAN_RATIO * max(float(np.median(spans[BOX_CHANNELS:])), 1e-12))


def is_detection(values: np.ndarray) -> bool:
    """A detector's head: pixel boxes beside scores (`pixel_boxes`), or raw box regressions leaving [0, 1] beside
    sigmoid scores in rows that are no distribution."""
    axis = detection_axis(values)
    if values.shape[axis] < BOX_CHANNELS + 1 or values.size == 0:
        return False
    if pixel_boxes(values):
        return True
    rows = np.moveaxis(values.astype(np.float64), axis, -1).reshape(-1, values.shape[axis])
    boxes, scores = rows[:, :BOX_CHANNELS], rows[:, BOX_CHANNELS:]
    sigmoid_scores = probabilities(scores)
    distribution = rows.min() >= 0.0 and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3)
    return bool(sigmoid_scores and (boxes.min() < 0.0 or boxes.max() > 1.0) and not distribution)
