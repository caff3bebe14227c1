"""The drift budget: the limits INT8 may show and still ship, the flags that set them (`optimize` and `evaluate`
alike), and the refusal raised when INT8 misses them. Which metric of each output kind is judged against which limit,
and the violations that follow, are `optimizer.drift_checks`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from quantserve.errors import QuantserveError


class Refusal(str):
    """A refusal's one line, carrying the record behind it (`refused_for`: drift, speed, time, evidence; the
    violations, speed figures or candidates tried) for a reader that wants data: `optimize --json` prints it as
    one document where it printed nothing. A str, so every site that builds the line and raises it keeps its
    form; `BudgetExceeded` takes the record from it."""

    record: dict[str, Any]

    def __new__(cls, line: str, record: Mapping[str, Any] | None = None) -> Refusal:
        refusal = super().__new__(cls, line)
        refusal.record = dict(record or {})
        return refusal


class BudgetExceeded(QuantserveError):
    """INT8 missed the drift or speed budget: nothing shipped, one line naming what missed, exit 1. `record`: what
    the refusal rests on (given, or carried by a `Refusal` line; empty where neither)."""

    exit_code = 1

    def __init__(self, line: str, record: Mapping[str, Any] | None = None) -> None:
        super().__init__(line)
        self.record: dict[str, Any] = dict(record if record is not None else getattr(line, "record", {}))


class UnsetThreshold(float):
    """--label-threshold's default, as `DriftBudget` and the flags' defaults hold it: a float that says nobody set
    it, so a box list's boxes are read at YOLO's 0.25 (`optimizer.box_lists`) unless the user names a threshold (0.5
    included). Like `ListFromSource`, a default argparse hands on as it is; a value from the command line, the
    environment or a file is a plain float."""


@dataclass(frozen=True)
class DriftBudget:
    """The largest drift INT8 may show and still ship (defaults from issue 9)."""

    max_accuracy_drop_points: float = 1.0
    min_top1_agreement: float = 0.99
    min_cosine_mean: float = 0.99
    min_cosine_worst: float = 0.97
    min_sequence_agreement: float = 0.98
    min_channel_correlation: float = 0.98
    min_class_iou: float = 0.9  # masks: worst class's IoU, FP32 vs INT8 (a small class can vanish at 99 % agreement)
    # soft masks: per-sample IoU of the cut maps. The worst as a mask's worst class; the mean as one pixel's shift of
    # every sample's 40 × 40 mask reads (0.95; a 10 × 10 one shifted by a pixel reads 0.82)
    min_mask_iou_mean: float = 0.95
    min_mask_iou_worst: float = 0.9
    # images: per-sample PSNR against FP32, in dB. An INT8 error independent of FP32's own adds to it in quadrature:
    # at FP32's 35 dB against the true images, INT8 at 40 dB against FP32 is 0.56 of FP32's RMS error (35 -> 33.8 dB,
    # about 1 dB lost), at 45 dB 0.18 (0.14 dB lost). Flat crops, where FP32 is far better than 35 dB, lose more:
    # waifu2x's 2x photo model, measured against the true crops (FP32 35.0 dB, bicubic 33.0), shipped at 40 / 35
    # read 33.0 — no better than bicubic — and at 45 / 40 read 34.1; so 45 / 40 by default, and a task metric
    # against ground truth (--metric) where a fraction of a dB matters. 40 dB is 2.6 of 255 levels RMS.
    min_psnr_mean: float = 45.0
    min_psnr_worst: float = 40.0
    # box lists: F1 of the boxes matched FP32 -> INT8, and their mean IoU (F1 at IoU 0.5 passes every box moved by a
    # third of its width); isbnx's YOLO26n reads 1.0 and 0.998 with its input moved by 2/255, 1.0 and 0.77 by 20 px
    min_box_agreement: float = 0.95
    min_box_iou: float = 0.9
    max_channel_error: float = 0.25  # RMS error over the FP32 std per channel: 0.2 is noise alone at correlation 0.98
    max_channel_gain: float = 0.1  # |slope − 1| of a channel's INT8 values on FP32's: a rescaled one (`channel_gain`)
    # a score output's quiet channels (never on in FP32, all under 0.1): largest absolute error, in the scores' units
    max_quiet_error: float = 0.05
    max_metric_drop: float = 0.01  # the user metric (--metric): relative drop, 0.01 = 1 %
    label_threshold: float = UnsetThreshold(0.5)  # a class is on from this score (not a budget, the rule)
    # --gate NAME=BY: output NAME judged only where FP32's BY reaches label_threshold (`optimizer.gated_maps`); a rule
    # of where outputs are read, as label_threshold is, carried here so optimize and evaluate judge it alike
    gates: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name, value in self.to_dict().items():
            in_unit = (name.startswith("min_") or name == "label_threshold") and name not in DECIBEL_FIELDS
            if not math.isfinite(value) or value < 0 or (in_unit and value > 1):
                flag = BUDGET_FLAGS[name][0]
                if name in DECIBEL_FIELDS:
                    raise QuantserveError(f"{flag} {value:g}: expected a PSNR in dB, a number >= 0")
                raise QuantserveError(f"{flag} {value:g}: expected a number in [0, 1] (drops: any number >= 0)")

    def to_dict(self) -> dict[str, float]:
        """The limits and the threshold (the gates: each gated record's `judged_at` says them)."""
        return {name: value for name, value in asdict(self).items() if name != "gates"}


DECIBEL_FIELDS = ("min_psnr_mean", "min_psnr_worst")  # levels in dB, not shares: any number >= 0
# budget field -> (the CLI flag that sets it, its help); `optimize` and `evaluate` add the same flags
BUDGET_FLAGS: dict[str, tuple[str, str]] = {
    "max_accuracy_drop_points": ("--max-accuracy-drop", "largest task-accuracy drop in points (outputs with labels)"),
    "min_top1_agreement": ("--min-top1-agreement", "classification outputs: share of samples with the same top-1"),
    "min_cosine_mean": ("--min-cosine-mean", "embedding outputs: mean cosine similarity to FP32"),
    "min_cosine_worst": ("--min-cosine-worst", "embedding outputs: worst sample's cosine similarity"),
    "min_sequence_agreement": ("--min-sequence-agreement", "sequence outputs: share of identical CTC-decoded samples"),
    "min_channel_correlation": ("--min-channel-correlation", "detection/dense outputs: worst channel's correlation"),
    "min_class_iou": ("--min-class-iou", "mask outputs: worst class's IoU between the FP32 and INT8 masks"),
    "min_mask_iou_mean": ("--min-mask-iou-mean", "soft_mask outputs: mean per-sample IoU of the FP32 and INT8 masks"),
    "min_mask_iou_worst": ("--min-mask-iou-worst", "soft_mask outputs: worst sample's IoU of the FP32 and INT8 masks"),
    "min_psnr_mean": ("--min-psnr-mean", "image outputs: mean per-sample PSNR against FP32 over the pixel range, dB"),
    "min_psnr_worst": ("--min-psnr-worst", "image outputs: worst sample's PSNR against FP32 over the pixel range, dB"),
    "min_box_agreement": (
        "--min-box-agreement",
        "box_list outputs and decoded detection heads: F1 of FP32's and INT8's boxes at score >= --label-threshold "
        "(0.25 unless given), matched by class at IoU >= 0.5; dense score outputs over many positions (per-anchor "
        "scores, probability maps): the share of clear positives kept at 0.25, 0.5, 0.7, 0.9 and --label-threshold, "
        "and 1 - positions turned on from nothing or off to nothing per sample",
    ),
    "min_box_iou": ("--min-box-iou", "box_list outputs and decoded detection heads: mean IoU of the boxes matched"),
    "max_channel_error": (
        "--max-channel-error",
        "detection/dense outputs: worst channel's RMS error over its FP32 standard deviation (catches shifts)",
    ),
    "max_channel_gain": (
        "--max-channel-gain",
        "detection/dense outputs: worst channel's |slope - 1| of its INT8 values on FP32's (catches a rescaled one)",
    ),
    "max_quiet_error": (
        "--max-quiet-error",
        "dense score outputs: largest absolute error of a channel never on in FP32 (all its values under 0.1 and "
        "--label-threshold)",
    ),
    "max_metric_drop": ("--max-metric-drop", "--metric: largest relative drop of the user metric (0.01 = 1 %%)"),
    "label_threshold": (
        "--label-threshold",
        "multilabel, multitask and soft_mask outputs, dense flags and probabilities: the score at which a class, "
        "task or pixel is on, as the model is used (logits: at its logit); box_list outputs and detection heads of "
        "pixel boxes: the score from which a box counts (not given: 0.25); classification outputs, given: the "
        "confidence from which the top class is answered",
    ),
}
