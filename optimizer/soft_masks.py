"""Single-channel score maps that are masks: a segmentation's sigmoid foreground, (N, H, W, 1), (N, 1, H, W) or
(N, H, W), read by thresholding — the `soft_mask` kind of `optimizer.output_kinds`, judged by the IoU of each
sample's thresholded map, FP32 against INT8 (mean and worst, `optimizer.drift_budget`).

Judged as a dense map, MediaPipe's selfie segmentation (N, 144, 256, 1) was refused at "worst channel correlation
0.9256" while its INT8 person masks at 0.5 had a mean IoU of 0.75 per image: the refusal was right, the metric
named was not the one its users read. A mask is told from other maps in [0, 1] by its values, which sit near 0
or 1 (selfie: 90 % within 0.1 of either, PP-OCRv4's text map 99.8 %) with a solid foreground (of the values over
0.1, 80 % and 97 % reach 0.9); a heatmap's peaks are a few percent of its blobs (a Gaussian's values ≥ 0.9 cover
5 % of those ≥ 0.1), a depth map or a posteriorgram spreads over the range (basic-pitch's notes: 38 % near 0 or 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from quantserve.metrics import probabilities

COMMITTED_MARGIN = 0.1  # a value this near 0 or 1 is committed; one over it is on-ish, one at 1 - it plainly on
MIN_COMMITTED = 0.75  # share of a mask's values committed
MIN_SOLID = 0.5  # share of a mask's on-ish values plainly on
DOUBT_COMMITTED = 0.85  # below this (or MIN_SOLID's), a mask's reading is borderline: the line says so
DOUBT_SOLID = 0.6
NEAR_COMMITTED = 0.65  # a dense map this committed (and this solid) nearly reads as a mask: the line says so
NEAR_SOLID = 0.4
MIN_SIDE = 8  # the map's two axes have at least this many entries: (N, T, 3) per-frame scores are no image
# a map of raw values doubted as a mask's logits has both sides this long or more: an SSD's (N, 2304, 16) box
# regressions in pixels read "committed" through a sigmoid too (MediaPipe's full-range face detector, session 68)
MASK_LOGITS_MIN_SIDE = 32
MIN_UNION = 100  # a sample whose FP32 and INT8 masks cover fewer values together is too small for its IoU to mean
# fewer judged samples, every one holding, cannot show that even half a map's masks would (one-sided 95 % Wilson
# bound, `quantserve.metrics.agreement_lower_bound`: 0.27 for one, 0.43 for two, 0.53 for three): the map is judged
# as a dense map too (`unjudged_words`)
MIN_JUDGED_SAMPLES = 3
READ_ROWS = 64  # samples the kind is read from (a PP-OCR batch of 272 maps of 320 × 320 is 28 M values)


def single_channel_map(values: np.ndarray) -> bool:
    """A float output of 3 or 4 axes with exactly two non-batch axes of MIN_SIDE or more entries and any other
    a singleton: one score per position of a 2-D map."""
    if values.ndim not in (3, 4) or not np.issubdtype(values.dtype, np.floating) or not values.size:
        return False
    wide = [size for size in values.shape[1:] if size != 1]
    return len(wide) == 2 and min(wide) >= MIN_SIDE


def mask_shares(values: np.ndarray) -> tuple[float, float] | None:
    """(committed, solid) of a map in [0, 1] read off its first READ_ROWS samples: the share of its values within
    COMMITTED_MARGIN of 0 or 1, and the share of its values over COMMITTED_MARGIN that reach 1 - COMMITTED_MARGIN;
    None where the values leave [0, 1] or none is on-ish (an empty foreground says nothing)."""
    rows = np.asarray(values[:READ_ROWS])
    if not np.isfinite(rows).all() or not probabilities(rows):
        return None
    on = np.count_nonzero(rows > COMMITTED_MARGIN)
    if not on:
        return None
    solid = np.count_nonzero(rows >= 1.0 - COMMITTED_MARGIN)
    committed = np.count_nonzero(rows <= COMMITTED_MARGIN) + solid
    return committed / rows.size, solid / on


def is_soft_mask(values: np.ndarray) -> bool:
    """A single-channel map in [0, 1] whose values are mostly committed and whose foreground is solid."""
    if not single_channel_map(values):
        return False
    shares = mask_shares(values)
    return shares is not None and shares[0] >= MIN_COMMITTED and shares[1] >= MIN_SOLID


def mask_doubt(name: str, kind: str, values: np.ndarray) -> str:
    """Where a single-channel map's reading as a mask or a dense map was borderline, why, and the override; ""
    otherwise, and where `kind` is not the one its values read as (the user named it). The shares move with the
    data: a mask over few foreground pixels, or a blurred one, reads less committed, a saturated heatmap more solid."""
    if kind not in ("soft_mask", "dense") or not single_channel_map(values):
        return ""
    if kind == "soft_mask" and padded_distributions(values):
        return (
            f"read as a mask; yet its last axis of {values.shape[-1]} sums to 1 at every position not all 0, as one "
            f"class distribution per step does (a decoder's, padded past its end): if each position is a step's or a "
            f"token's classes, pass --output-kind {name}=token_classification"
        )
    if kind == "dense" and (doubt := logits_mask_doubt(name, values)):
        return doubt
    shares = mask_shares(values)
    if shares is None or (kind == "soft_mask") != is_soft_mask(values):
        return ""
    committed, solid = shares
    figures = (
        f"{committed * 100:.0f} % of its values lie within {COMMITTED_MARGIN:g} of 0 or 1 and {solid * 100:.0f} % "
        f"of those over {COMMITTED_MARGIN:g} reach {1 - COMMITTED_MARGIN:g}"
    )
    if kind == "soft_mask" and (committed < DOUBT_COMMITTED or solid < DOUBT_SOLID):
        return (
            f"read as a mask: {figures}; if it is a map of values (depth, a heatmap), pass --output-kind {name}=dense"
        )
    if kind == "dense" and committed >= NEAR_COMMITTED and solid >= NEAR_SOLID:
        return f"read as a dense map: {figures}; if it is a mask, pass --output-kind {name}=soft_mask"
    return ""


def logits_mask_doubt(name: str, values: np.ndarray) -> str:
    """Why a single-channel map of raw values, read as a dense map, may be a mask's logits, with the override; ""
    otherwise. BlazePose's segmentation logits (N, 256, 256, 1) were judged value for value with no word of
    `soft_mask`, which cuts logits at 0 (`mask_threshold`). Through a sigmoid a mask's logits read as a mask does
    (`mask_shares`); both signs are asked for, as a map of positive values (a depth in metres) would read solid, and
    both sides MASK_LOGITS_MIN_SIDE long, as regressions per anchor (N, A, 16) read committed too."""
    rows = np.asarray(values[:READ_ROWS], dtype=np.float64)
    if min(size for size in values.shape[1:] if size != 1) < MASK_LOGITS_MIN_SIDE:
        return ""
    if not rows.size or not np.isfinite(rows).all() or probabilities(rows) or not rows.min() < 0.0 < rows.max():
        return ""
    shares = mask_shares(1.0 / (1.0 + np.exp(-np.clip(rows, -60.0, 60.0))))
    if shares is None or shares[0] < MIN_COMMITTED or shares[1] < MIN_SOLID:
        return ""
    return (
        f"read as a dense map of raw values; through a sigmoid {shares[0] * 100:.0f} % of them lie within "
        f"{COMMITTED_MARGIN:g} of 0 or 1 and {shares[1] * 100:.0f} % of those over {COMMITTED_MARGIN:g} reach "
        f"{1 - COMMITTED_MARGIN:g}, as a mask's logits do: if it is a mask, pass --output-kind {name}=soft_mask"
    )


def mask_threshold(reference: np.ndarray, threshold: float) -> tuple[float, bool]:
    """The value a mask is cut at, and whether that is a logit: scores at `threshold`; values outside [0, 1] are
    logits, cut at the threshold's logit (0 for 0.5), as multi-label logits are (`quantserve.metrics`)."""
    if not reference.size or probabilities(reference):
        return threshold, False
    return (math.log(threshold / (1.0 - threshold)) if 0.0 < threshold < 1.0 else 0.0), True


def soft_mask_metrics(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> dict[str, Any]:
    """Each sample's map cut at `threshold` (`mask_threshold`), FP32 against INT8: the mean and worst IoU over the
    samples whose two masks together cover MIN_UNION values or more (the worst sample named), and, as information,
    the share of values on the same side of the cut. Whole-batch IoU would let one sample's mask vanish among
    hundreds of intact ones."""
    cut, logits = mask_threshold(reference, threshold)
    per_sample = (len(reference), int(np.prod(reference.shape[1:])))
    fp32, int8 = (reference >= cut).reshape(per_sample), (candidate >= cut).reshape(per_sample)
    union = np.count_nonzero(fp32 | int8, axis=1)
    judged = union >= MIN_UNION
    record: dict[str, Any] = {
        "mask_threshold": threshold,
        "mask_cut": cut,
        "mask_logits": logits,
        "mask_samples_judged": int(judged.sum()),
        "mask_value_agreement": float(np.mean(fp32 == int8)) if fp32.size else 1.0,
    }
    if judged.any():
        ious = np.count_nonzero(fp32 & int8, axis=1)[judged] / union[judged]
        worst = int(np.argmin(ious))
        record.update(
            mask_iou_mean=float(ious.mean()),
            mask_iou_worst=float(ious[worst]),
            mask_iou_worst_sample=int(np.flatnonzero(judged)[worst]),
        )
    return record


def unjudged_words(record: Mapping[str, Any]) -> str:
    """Why a soft mask's record is also judged as a dense map (its channel figures, `optimizer.drift_metrics`), e.g.
    "no sample's mask covers 100 values at --label-threshold 0.5: judged as a dense map"; "" where MIN_JUDGED_SAMPLES
    or more were judged by IoU. With none judged (a selfie segmenter fed no people, a map all under the cut), no IoU
    is recorded and the budget skips what a record lacks: INT8 could scramble every value under the cut and ship."""
    judged = int(record.get("mask_samples_judged") or 0)
    if judged >= MIN_JUDGED_SAMPLES:
        return ""
    cut = mask_cut_words(record)
    if not judged:
        return f"no sample's mask covers {MIN_UNION} values {cut}: judged as a dense map"
    masks = "sample's mask covers" if judged == 1 else "samples' masks cover"
    return f"only {judged} {masks} {MIN_UNION} values {cut}: judged as a dense map too"


def mask_cut_words(record: Mapping[str, Any]) -> str:
    """E.g. "at --label-threshold 0.5" or "at logit 0: --label-threshold 0.5": where a refusal's IoU was read, which
    the flag moves (a DB text detector's map is read at 0.3); "" for a record without a cut."""
    if record.get("mask_threshold") is None:
        return ""
    return cut_words(record["mask_threshold"], record.get("mask_cut"), bool(record.get("mask_logits")))


def cut_words(threshold: float, cut: float | None, logits: bool) -> str:
    """E.g. "at --label-threshold 0.5", or "at logit 0: --label-threshold 0.5" where logits were cut at its logit."""
    flag = f"--label-threshold {threshold:g}"
    return f"at logit {cut:.3g}: {flag}" if logits and cut is not None else f"at {flag}"


def padded_distributions(values: np.ndarray) -> bool:
    """Whether an (N, T, C) output's positions (of its first READ_ROWS samples) that are not all 0 each sum to 1: a
    softmax per step, its steps past the end padded with zeros. SLANet-plus's per-step token
    softmax padded to 1024 steps read as a soft mask: "INT8 turns on a channel FP32 never does (only 1 sample's
    mask covers 100 values …)" meant nothing to a table-OCR user (probe 65D)."""
    if values.ndim != 3 or values.shape[-1] < 3:
        return False
    rows = np.asarray(values[:READ_ROWS], dtype=np.float64).reshape(-1, values.shape[-1])
    rows = rows[np.abs(rows).sum(axis=1) > 0]
    return bool(len(rows)) and rows.min() >= 0 and bool(np.allclose(rows.sum(axis=1), 1.0, atol=1e-3))
