"""A soft mask no sample of which could be judged by IoU (no mask reaches --label-threshold over MIN_UNION values, in
FP32 nor INT8: a selfie segmenter fed no people, a map all under the cut) recorded no IoU, and the budget skips what a
record lacks: it held on no evidence, whatever INT8 did to the values under the cut (issue 9). Such a map, and one
with fewer than MIN_JUDGED_SAMPLES samples judged, is judged as a dense map too; a judged mask is judged as before."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.soft_masks import MIN_JUDGED_SAMPLES
from quantserve.metrics import agreement_lower_bound

SIDE = 32
UNJUDGED = "no sample's mask covers 100 values at --label-threshold 0.5: judged as a dense map"
CHANNEL_KEYS = ("channel_correlation_worst", "channel_error_worst", "mask_unjudged")


def _bumps(samples: int, peak: float, width: float = 50.0, seed: int = 0) -> np.ndarray:
    """(samples, SIDE, SIDE, 1) maps of one Gaussian bump each, peaking at `peak`."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    cy, cx = rng.uniform(8, SIDE - 8, size=(2, samples, 1, 1))
    bumps = peak * np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / width)
    return bumps[..., None].astype(np.float32)


def _judge(fp32: np.ndarray, int8: np.ndarray, kind: str = "soft_mask") -> tuple[dict, list[str], list[str]]:
    report = measure_drift({"m": fp32}, {"m": int8}, {"m": kind}, DriftBudget())
    return report.outputs["m"], [v.metric for v in report.violations], [v.line(kind) for v in report.violations]


def test_a_map_under_the_cut_scrambled_by_int8_is_refused_as_a_dense_map() -> None:
    fp32 = _bumps(40, peak=0.4)  # every value under 0.5, in FP32 and INT8 alike
    scrambled = np.random.default_rng(1).permutation(fp32.reshape(-1)).reshape(fp32.shape)
    record, metrics, lines = _judge(fp32, scrambled)
    assert record["mask_samples_judged"] == 0 and "mask_iou_mean" not in record
    assert record["mask_unjudged"] == UNJUDGED
    assert metrics == ["channel_correlation_worst", "channel_error_worst"]
    assert record["channel_correlation_worst"] < 0.5
    assert lines[0].startswith(f"output 'm' (soft_mask): worst channel correlation ({UNJUDGED}; axis "), lines[0]
    assert lines[0].endswith(" < budget 0.98"), lines[0]


def test_a_map_under_the_cut_kept_by_int8_holds() -> None:
    fp32 = _bumps(40, peak=0.4)
    noisy = fp32 + np.random.default_rng(2).normal(0.0, 1e-3, fp32.shape).astype(np.float32)
    record, metrics, _ = _judge(fp32, noisy)
    assert metrics == [] and record["mask_unjudged"] == UNJUDGED
    assert record["channel_correlation_worst"] > 0.98


def test_masks_too_small_to_judge_that_int8_erases_are_refused() -> None:
    fp32 = _bumps(40, peak=1.0, width=4.0)  # each sample's mask at 0.5 covers about 9 values: under MIN_UNION
    record, metrics, lines = _judge(fp32, np.zeros_like(fp32))
    assert record["mask_samples_judged"] == 0 and "channel_correlation_worst" in metrics, lines
    kept, metrics, _ = _judge(fp32, fp32 + np.float32(1e-4))
    assert metrics == [] and kept["mask_unjudged"] == UNJUDGED


def test_too_few_judged_samples_are_judged_as_a_dense_map_too() -> None:
    fp32 = _bumps(40, peak=0.4)
    fp32[:2] = _bumps(2, peak=1.0, width=200.0, seed=3)  # two samples with masks of hundreds of values
    scrambled = fp32.copy()
    scrambled[2:] = np.random.default_rng(4).permutation(fp32[2:].reshape(-1)).reshape(fp32[2:].shape)
    record, metrics, lines = _judge(fp32, scrambled)
    assert record["mask_samples_judged"] == 2 and record["mask_iou_worst"] == 1.0
    few = "only 2 samples' masks cover 100 values at --label-threshold 0.5: judged as a dense map too"
    assert record["mask_unjudged"] == few and "channel_correlation_worst" in metrics
    assert f"({few}; axis " in lines[0], lines[0]


def test_the_minimum_is_where_judged_samples_can_show_half_the_masks_hold() -> None:
    assert agreement_lower_bound(1.0, MIN_JUDGED_SAMPLES - 1) < 0.5 <= agreement_lower_bound(1.0, MIN_JUDGED_SAMPLES)


def test_a_judged_mask_is_judged_by_its_iou_alone() -> None:
    masks = _bumps(20, peak=1.0, width=200.0)  # every sample's mask covers hundreds of values
    scrambled = masks.copy()
    scrambled[masks < 0.5] = np.random.default_rng(5).permutation(masks[masks < 0.5])  # only values under the cut
    record, metrics, _ = _judge(masks, scrambled)
    assert record["mask_samples_judged"] == 20 and record["mask_iou_worst"] == 1.0
    assert metrics == [] and not set(CHANNEL_KEYS) & set(record)
    shrunk, metrics, _ = _judge(masks, masks * np.float32(0.6))
    assert metrics == ["mask_iou_mean", "mask_iou_worst"] and not set(CHANNEL_KEYS) & set(shrunk)
