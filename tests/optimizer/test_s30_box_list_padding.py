"""Box lists padded below their detections (optimizer.box_lists; session 30, probe pm11).

Exports with fewer than K detections in an image often pad with class -1, score 0 and box 0: the class column was
then no column of non-negative whole numbers, the output was read `detection`, and boxes moved by 8 % of the image
passed at channel correlation 0.983 (the zero pads held it up). With one box per image, every column is "sorted"
(a value, then zeros), and an edge-clipped x2 (1.0) outspanned the scores and was read as the score.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.box_lists import box_columns
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.output_kinds import infer_output_kinds

SAMPLES, ROWS = 32, 50


def _padded(pad_class: float, most: int = 3, seed: int = 0) -> np.ndarray:
    """(SAMPLES, ROWS, 6) [x1, y1, x2, y2, score, class] in pixels: 1..`most` detections, then rows of
    score 0, box 0 and class `pad_class`."""
    rng = np.random.default_rng(seed)
    out = np.zeros((SAMPLES, ROWS, 6), dtype=np.float32)
    out[..., 5] = pad_class
    for sample in range(SAMPLES):
        found = rng.integers(1, most + 1)
        x1, y1 = rng.uniform(0, 400, (2, found))
        w, h = rng.uniform(80, 200, (2, found))
        scores, classes = np.sort(rng.uniform(0.4, 0.95, found))[::-1], rng.integers(0, 80, found)
        out[sample, :found] = np.stack([x1, y1, x1 + w, y1 + h, scores, classes], axis=1)
    return out


def _moved(fp32: np.ndarray, share: float) -> np.ndarray:
    """Every detection moved right by `share` of its width (pads kept)."""
    int8 = fp32.copy()
    int8[..., [0, 2]] += share * (fp32[..., 2:3] - fp32[..., 0:1])
    return int8


def _judged(fp32: np.ndarray, int8: np.ndarray, budget: DriftBudget | None = None) -> DriftReport:
    kinds = infer_output_kinds({"output0": fp32})
    assert kinds == {"output0": "box_list"}
    return measure_drift({"output0": fp32}, {"output0": int8}, kinds, budget or DriftBudget())


def test_class_minus_one_pads_read_as_a_box_list() -> None:
    fp32 = _padded(-1.0)
    found = box_columns(fp32)
    assert found is not None and (found.score, found.label, found.box, found.corners) == (4, 5, (0, 1, 2, 3), True)
    report = _judged(fp32, _moved(fp32, 0.01))
    assert report.holds and report.outputs["output0"]["box_agreement"] == 1.0


def test_boxes_moved_under_class_minus_one_pads_are_refused_by_box_agreement() -> None:
    fp32 = _padded(-1.0)
    assert int((fp32[..., 4] > 0).sum()) == 66
    report = _judged(fp32, _moved(fp32, 0.8))  # IoU 0.11: no box matched (and no mean IoU to read)
    assert [violation.line("box_list") for violation in report.violations] == [
        "output 'output0' (box_list): box agreement (F1 at IoU 0.5) (score >= 0.25: 66 boxes in FP32, 66 in INT8, "
        "0 matched) 0 < budget 0.95"
    ]


@pytest.mark.parametrize("pad_class", [-1.0, 0.0])
def test_pad_rows_hold_no_box_even_at_threshold_zero(pad_class: float) -> None:
    fp32 = _padded(pad_class)
    record = _judged(fp32, fp32.copy(), DriftBudget(label_threshold=0.0)).outputs["output0"]
    assert record["boxes_fp32"] == record["boxes_matched"] == int((fp32[..., 4] > 0).sum())


def test_one_box_per_image_clipped_at_the_edge_keeps_its_score_column() -> None:
    """Normalized, one box per image, x2 = 1.0 on many rows: x2 spans more than the scores (0.3-0.9)."""
    rng = np.random.default_rng(1)
    values = np.zeros((SAMPLES, ROWS, 6), dtype=np.float32)
    cx, cy = rng.uniform(0.1, 0.9, (2, SAMPLES))
    w, h = rng.uniform(0.2, 0.9, (2, SAMPLES))
    values[:, 0, :4] = np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1), 0.0, 1.0)
    values[:, 0, 4], values[:, 0, 5] = rng.uniform(0.3, 0.9, SAMPLES), rng.integers(0, 80, SAMPLES)
    assert (values[:, 0, 2] == 1.0).sum() > 5 and np.ptp(values[..., 2]) > np.ptp(values[..., 4])
    for order in ([0, 1, 2, 3, 4, 5], [4, 5, 0, 1, 2, 3]):  # score after the box, or first
        found = box_columns(values[..., order])
        assert found is not None and found.corners and found.label is not None
        assert (order[found.score], order[found.label], tuple(order[c] for c in found.box)) == (4, 5, (0, 1, 2, 3))
