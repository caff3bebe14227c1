"""A refusal on few samples is called thin evidence only where more samples could undo it: not where a worst
sample's figure missed (it can only fall with more rows) nor where the user's own --metric missed. MediaPipe's selfie
segmentation was refused at worst-sample mask IoU 0 and a --metric 20 % down on 240 rows, and told "this refusal
rests on only 240 held-out samples (thin evidence …)" (session 69)."""

from __future__ import annotations

from typing import Any

from optimizer.drift_budget import DriftBudget
from optimizer.few_samples import few_samples_refusal_words


def _mask_refusal(violations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "samples": 240,
        "budget": DriftBudget().to_dict(),
        "holds": False,
        "outputs": {"mask": {"kind": "soft_mask", "mask_iou_mean": 0.8212, "mask_iou_worst": 0.0}},
        "violations": violations,
        "thin_evidence": [],
    }


MEAN = {"output": "mask", "metric": "mask_iou_mean", "value": 0.8212, "budget": 0.95}
WORST = {"output": "mask", "metric": "mask_iou_worst", "value": 0.0, "budget": 0.9}
METRIC = {"output": "mp:mask_iou", "metric": "relative_drop", "value": 0.2037, "budget": 0.01, "scope": "metric"}


def test_a_mean_missed_alone_on_few_samples_is_still_called_thin() -> None:
    assert few_samples_refusal_words(_mask_refusal([MEAN])).startswith("this refusal rests on only 240 held-out")


def test_a_worst_sample_floor_missed_is_no_thin_evidence() -> None:
    assert few_samples_refusal_words(_mask_refusal([MEAN, WORST])) == ""


def test_the_users_metric_missed_is_no_thin_evidence() -> None:
    assert few_samples_refusal_words(_mask_refusal([METRIC, MEAN])) == ""
