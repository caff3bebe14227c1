"""A box list's F1 rests on its boxes, not its rows: few boxes back it, a thin-evidence note says so
(optimizer.drift_evidence; issue 9, session 31).

box_agreement (the F1 of FP32's and INT8's boxes) over 300 rows holding 10 boxes in all agreed 1.0 and said nothing,
while 10 of 10 boxes matched show only that the F1 is at least 0.79 (95 % lower bound), short of the 0.95 budget.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_evidence import thin_evidence, thin_evidence_line
from optimizer.output_kinds import infer_output_kinds

SAMPLES, ROWS = 300, 20


def _box_lists(every: int, seed: int = 0) -> np.ndarray:
    """(SAMPLES, ROWS, 6) [x1, y1, x2, y2, score, class] sorted by score: one detection (score 0.6-0.95) in every
    `every`-th sample, the rest a near-zero tail."""
    rng = np.random.default_rng(seed)
    x1, y1 = rng.uniform(0, 600, (2, SAMPLES, ROWS))
    w, h = rng.uniform(5, 300, (2, SAMPLES, ROWS))
    scores, classes = rng.uniform(1e-7, 0.01, (SAMPLES, ROWS)), rng.integers(0, 3, (SAMPLES, ROWS))
    scores[::every, 0] = rng.uniform(0.6, 0.95, len(scores[::every]))
    w[::every, 0], h[::every, 0] = 150.0, 80.0
    out = np.stack([x1, y1, x1 + w, y1 + h, scores, classes], axis=2).astype(np.float32)
    order = np.argsort(-out[:, :, 4], axis=1, kind="stable")
    return np.take_along_axis(out, order[:, :, None], axis=1)


def _thin(every: int) -> list[dict[str, object]]:
    fp32 = _box_lists(every)
    kinds = infer_output_kinds({"detections": fp32})
    assert kinds == {"detections": "box_list"}
    report = measure_drift({"detections": fp32}, {"detections": fp32.copy()}, kinds, DriftBudget())
    assert report.holds and report.outputs["detections"]["box_agreement"] == 1.0
    return thin_evidence(report, DriftBudget(), SAMPLES)


def test_ten_boxes_over_300_rows_are_thin_evidence_for_the_box_f1() -> None:
    thin = _thin(every=30)
    assert [(entry["metric"], entry["rows"]) for entry in thin] == [("box_agreement", 10)]
    line = thin_evidence_line(thin[0])
    assert line.startswith("output 'detections': box agreement (F1 at IoU 0.5) 1 over 10 held-out FP32 boxes shows")
    assert "not the budget's 0.95" in line and "FP32 boxes would (--eval)" in line


def test_a_hundred_boxes_show_the_budget() -> None:
    assert _thin(every=3) == []
