"""Image outputs: a model's picture — (N, C, H, W) or (N, H, W, C) with C = 3 or 4 colour channels, both sides 16 or
more, values in a pixel range ([0, 1] or [0, 255]) — the `image` kind of `optimizer.output_kinds`, judged by each
sample's PSNR against FP32 over that range (mean and worst, `optimizer.drift_budget`).

Judged as a dense map, waifu2x's 2× super-resolution (N, 3, 128, 128) in [0, 1] shipped at INT8 as "budget holds":
worst channel correlation 0.9944, channel error 0.116 of the 0.25 allowed. A dense channel's error is scaled by its
FP32 spread over every pixel of every image, which is mostly image content: 0.25 of it allows about 16 gray levels
RMS, while the model adds about 2 dB over bicubic. Against the true images the INT8 model read 30.3 dB, FP32 35.0
and bicubic 33.0: worse than no model on 66 % of the crops, the worst 16.6 dB down, with a blue cast. Against FP32
it read 34.8 dB mean, 21.9 worst. What a viewer sees is the error in pixel levels, which PSNR over the range counts.

An image is told from other maps of 3 or 4 channels by its values: nearly all within a tenth of the range of it
(an upscaler's overshoot), reaching a quarter of it (a [0, 1.5] map fits [0, 255] but is no 8-bit picture), at
most half of them blank (heatmaps and sigmoid masks are mostly background 0), and not a distribution over the
channels (a 3-class softmax map, read first as a class_map, its classes on axis 1 or the last). A signed map stays
dense. `--output-kind NAME=image` judges any float output of 2 axes or more so (a grayscale (N, H, W) one), also
in [-1, 1] (a tanh generator's); `NAME=dense` judges an image as a map.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from optimizer.row_kinds import row_form
from quantserve import metrics
from quantserve.errors import QuantserveError

IMAGE_CHANNELS = (3, 4)  # RGB, RGBA
MIN_SIDE = 16  # both spatial sides: (N, 3, 8, 3) per-frame features are no picture
INFERRED_RANGES = ((0.0, 1.0), (0.0, 255.0))  # read off the values, in this order
NAMED_RANGES = (*INFERRED_RANGES[:1], (-1.0, 1.0), *INFERRED_RANGES[1:])  # --output-kind NAME=image also takes tanh's
OVERSHOOT = 0.1  # share of the range a pixel may lie beyond it (an upscaler's ringing, unclamped)
MIN_IN_RANGE = 0.999  # share of the values within the range and its overshoot
MIN_REACH = 0.25  # the 99th percentile reaches this share of the range
BLANK = 0.02  # a value this near the bottom of the range, as a share of it, is blank
MAX_BLANK = 0.5  # share of blank values above which the map is a heatmap or a mask's background, not a picture
PSNR_CAP = 100.0  # dB: a sample INT8 leaves unchanged (infinite PSNR) counts as this, not as infinity in the mean
# the lowest per-sample PSNRs kept in the record, ascending: how many samples a worst-sample budget misses is counted
# from them (`optimizer.refusal_figures`); a low-light enhancer was refused at "worst sample 38.35 < 40" with no word
# of whether one sample of 128 missed or eleven (session 55)
PSNR_LOWEST_KEPT = 128
READ_VALUES = 1 << 20  # values the kind is read from: a batch of 4K frames is subsampled on its spatial axes
READ_ROWS = 16


def image_channel_axis(shape: tuple[int, ...]) -> int | None:
    """The colour axis of a 4-D (N, C, H, W) or (N, H, W, C) shape with C in IMAGE_CHANNELS and both other sides
    MIN_SIDE or more; None for any other shape."""
    if len(shape) != 4:
        return None
    for axis, sides in ((1, (2, 3)), (3, (1, 2))):
        if shape[axis] in IMAGE_CHANNELS and min(shape[side] for side in sides) >= MIN_SIDE:
            return axis
    return None


def pixel_range(values: np.ndarray, ranges: tuple[tuple[float, float], ...] = INFERRED_RANGES) -> tuple[float, float]:
    """The first of `ranges` that holds MIN_IN_RANGE of the finite values, each allowed OVERSHOOT of it either side,
    and that their 99th percentile reaches MIN_REACH of; (nan, nan) where none does. Values of a few units fit
    [0, 255] with room to spare, but are no 8-bit picture: over 255, their PSNR would pass any error."""
    flat = values.reshape(-1)
    flat = flat[:: max(1, flat.size // (4 * READ_VALUES))]  # a whole batch of 4K frames: a strided sample of it
    finite = flat[np.isfinite(flat)].astype(np.float64)
    if not finite.size:
        return math.nan, math.nan
    top = float(np.percentile(finite, 99))
    for low, high in ranges:
        slack = OVERSHOOT * (high - low)
        inside = np.mean((finite >= low - slack) & (finite <= high + slack))
        if inside >= MIN_IN_RANGE and top >= low + MIN_REACH * (high - low):
            return low, high
    return math.nan, math.nan


def is_image(values: np.ndarray) -> bool:
    """A float (N, C, H, W) or (N, H, W, C) picture (module docstring), read off a sample of its first rows."""
    axis = image_channel_axis(values.shape)
    if axis is None or not np.issubdtype(values.dtype, np.floating) or not values.size:
        return False
    sample = _sample(values, axis)
    low, high = pixel_range(sample)
    if math.isnan(low) or not np.isfinite(sample).all():
        return False
    if np.mean(sample <= low + BLANK * (high - low)) > MAX_BLANK:
        return False
    return row_form(np.moveaxis(sample, axis, -1).reshape(-1, values.shape[axis])) != "distribution"


def _sample(values: np.ndarray, axis: int) -> np.ndarray:
    """Up to about READ_VALUES values of the first READ_ROWS samples, every step-th row and column, as float64."""
    rows = values[:READ_ROWS]
    step = max(1, math.ceil(math.sqrt(rows.size / READ_VALUES)))
    picked = rows[:, :, ::step, ::step] if axis == 1 else rows[:, ::step, ::step, :]
    return np.asarray(picked, dtype=np.float64)


def named_image_range(name: str, values: np.ndarray) -> tuple[float, float]:
    """The pixel range of an output the user named an image (`--output-kind NAME=image`): [0, 1], [-1, 1] or
    [0, 255]; a one-line refusal where it is no float (or uint8: bytes) output of 2 axes or more, or its values fit
    none."""
    if not (np.issubdtype(values.dtype, np.floating) or values.dtype == np.uint8) or values.ndim < 2:
        raise QuantserveError(
            f"--output-kind {name}=image: output '{name}' holds {values.dtype} of shape {values.shape}; an image is "
            "a float (or uint8) map of 2 axes or more after the samples'"
        )
    low, high = pixel_range(values, NAMED_RANGES)
    if math.isnan(low):
        raise QuantserveError(
            f"--output-kind {name}=image: output '{name}' has values from {float(np.nanmin(values)):.4g} to "
            f"{float(np.nanmax(values)):.4g}, filling no pixel range ([0, 1], [-1, 1] or [0, 255]); judge it as dense"
        )
    return low, high


def image_metrics(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """Each sample's PSNR, INT8 against FP32, over the pixel range its FP32 values lie in (`judged_range`; both
    clipped to it, as a picture's stored pixels are), capped at PSNR_CAP: the mean, the worst and its sample, the
    lowest PSNR_LOWEST_KEPT of them; as
    information, the colour channel (axis 1 or the last) whose PSNR over every sample is lowest, the relative
    error (which ranks candidates, `DriftReport.error`) and the absolute differences."""
    if not reference.size:
        return {}
    low, high = judged_range(reference)
    mean_abs, max_abs = metrics.abs_difference(reference, candidate)
    axis = image_channel_axis(reference.shape)
    per_sample, per_channel = _squared_error_means(reference, candidate, (low, high), axis)
    psnr = _psnr(per_sample, high - low)
    record: dict[str, Any] = {
        "psnr_range": [low, high],
        "psnr_mean": float(np.mean(psnr)),
        "psnr_worst": float(np.min(psnr)),
        "psnr_worst_sample": int(np.argmin(psnr)),
        "psnr_samples": len(psnr),
        "psnr_lowest": [round(float(value), 3) for value in np.sort(psnr)[:PSNR_LOWEST_KEPT]],
        "relative_error": float(metrics.relative_error(reference, candidate)[0]),
        "max_abs_diff": max_abs,
        "mean_abs_diff": mean_abs,
    }
    if axis is not None:
        channel_psnr = _psnr(per_channel, high - low)
        worst = int(np.argmin(channel_psnr))
        record.update(psnr_channel_worst=float(channel_psnr[worst]), psnr_channel_worst_channel=worst)
        record["psnr_channel_axis"] = axis
    return record


def judged_range(reference: np.ndarray) -> tuple[float, float]:
    """The pixel range PSNR is read over: [0, 1], [-1, 1] or [0, 255] (`pixel_range`), else the FP32 values' own
    span (the kind was read off the first rows; later ones may leave it): never no range, and so nothing judged."""
    low, high = pixel_range(reference, NAMED_RANGES)
    if not math.isnan(low):
        return low, high
    low, high = float(np.nanmin(reference)), float(np.nanmax(reference))
    return (low, high) if high > low else (low, low + 1.0)


def _squared_error_means(
    reference: np.ndarray, candidate: np.ndarray, span: tuple[float, float], axis: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The mean squared error of each sample and of each entry along `axis` (zeros where None), both clipped to
    `span`, a block of samples at a time (`quantserve.metrics.BLOCK_BYTES` of float64)."""
    samples, channels = [], np.zeros(reference.shape[axis] if axis is not None else 1)
    step = max(1, metrics.BLOCK_BYTES // max(8 * reference[0].size, 1))
    for start in range(0, len(reference), step):
        fp32 = np.clip(reference[start : start + step].astype(np.float64), *span)
        error = np.square(np.clip(candidate[start : start + step].astype(np.float64), *span) - fp32)
        samples.append(error.reshape(len(error), -1).mean(axis=1))
        if axis is not None:
            channels += error.sum(axis=tuple(a for a in range(error.ndim) if a != axis))
    return np.concatenate(samples), channels / max(reference.size // len(channels), 1)


def _psnr(mean_squared: np.ndarray, span: float) -> np.ndarray:
    """10·log10(span² / MSE) in dB, PSNR_CAP where the error is (nearly) none; NaN stays NaN."""
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(span**2 / mean_squared), PSNR_CAP)  # type: ignore[no-any-return]


def psnr_words(metric: str, record: Mapping[str, Any]) -> str:
    """Where an image's PSNR was read: "sample 40, in dB over [0, 1]" for the worst, "in dB over [0, 1], 128
    samples" for the mean."""
    span = record.get("psnr_range")
    over = f"in dB over [{span[0]:g}, {span[1]:g}]" if span else "in dB"
    if metric == "psnr_worst" and record.get("psnr_worst_sample") is not None:
        return f"sample {record['psnr_worst_sample']}, {over}"
    return f"{over}, {record.get('psnr_samples', 0)} samples"
