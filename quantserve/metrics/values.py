"""Outputs compared value by value and channel by channel (dense maps, features, regressions): absolute and
relative error, and per channel the correlation, the error over FP32's spread, and that spread.
"""

from __future__ import annotations

import numpy as np

from quantserve.errors import QuantserveError
from quantserve.metrics.blocks import column_blocks, row_blocks


def abs_difference(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(mean, max) absolute element-wise difference; of values that are not numbers (strings), the share changed
    and 1.0 if any changed."""
    reference, candidate = np.asarray(reference), np.asarray(candidate)
    if reference.dtype.kind not in "biufc" or candidate.dtype.kind not in "biufc":
        changed = float(np.mean(reference != candidate)) if reference.size else float("nan")
        return changed, float(changed > 0)
    if reference.ndim == 0 or reference.size == 0:
        diff = np.abs(np.asarray(reference, np.float64) - np.asarray(candidate, np.float64))
        return float(diff.mean()) if diff.size else float("nan"), float(diff.max(initial=0.0))
    total, worst = 0.0, 0.0
    for rows in row_blocks(reference):
        diff = np.abs(reference[rows].astype(np.float64) - candidate[rows].astype(np.float64))
        total, worst = total + float(diff.sum()), max(worst, float(diff.max(initial=0.0)))
    return total / reference.size, worst


def _channels_last(x: np.ndarray, axis: int | None) -> np.ndarray:
    """(observations, channels), in the array's own dtype: `axis` moved last, every other axis flattened into rows."""
    x = np.asarray(x)
    if axis is None or x.ndim < 2:
        return x.reshape(-1, 1)
    return np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])


def channel_correlations(reference: np.ndarray, candidate: np.ndarray, axis: int | None = 1) -> np.ndarray:
    """Pearson correlation of candidate vs reference per channel along `axis`, over every other position.

    A channel constant in the reference is NaN (nothing to follow); one that varies in the reference
    but is constant in the candidate is 0.0 — a collapsed channel must show, however small its values.
    """
    if np.shape(reference) != np.shape(candidate):
        raise QuantserveError(f"cannot compare outputs of shapes {np.shape(reference)} and {np.shape(candidate)}")
    ref, new = _channels_last(reference, axis), _channels_last(candidate, axis)
    correlations = np.empty(ref.shape[1])
    for cols in column_blocks(ref):  # channels are independent: a block at a time bounds the float64 copies
        correlations[cols] = _correlations(ref[:, cols].astype(np.float64), new[:, cols].astype(np.float64))
    return correlations


def _constant(channels: np.ndarray) -> np.ndarray:
    """Per column of (observations, channels): constant to float precision (nothing there to follow or spread)."""
    if not len(channels):
        return np.ones(channels.shape[1], bool)
    scale = np.maximum(np.abs(channels).max(axis=0), 1e-30)
    return np.ptp(channels, axis=0) <= 1e-9 * scale  # type: ignore[no-any-return]


def _correlations(ref: np.ndarray, new: np.ndarray) -> np.ndarray:
    ref_centred, new_centred = ref - ref.mean(axis=0), new - new.mean(axis=0)
    ref_norm, new_norm = np.linalg.norm(ref_centred, axis=0), np.linalg.norm(new_centred, axis=0)
    ref_constant = _constant(ref)
    denominator = np.where(ref_norm * new_norm > 0, ref_norm * new_norm, 1.0)
    correlation = np.where(new_norm > 0, np.sum(ref_centred * new_centred, axis=0) / denominator, 0.0)
    return np.where(ref_constant, np.nan, np.clip(correlation, -1.0, 1.0))


def relative_error(reference: np.ndarray, candidate: np.ndarray, axis: int | None = None) -> np.ndarray:
    """‖candidate − reference‖₂ / ‖reference‖₂, whole tensor (axis None: one value) or per channel.

    A zero reference gives 0.0 where the candidate is zero too, else inf.
    """
    ref, new = _channels_last(reference, axis), _channels_last(candidate, axis)
    if axis is None:
        ref, new = ref.reshape(-1, 1), new.reshape(-1, 1)
    squared_error, squared_norm = np.zeros(ref.shape[1]), np.zeros(ref.shape[1])
    for cols in column_blocks(ref):
        for rows in row_blocks(ref[:, cols]):
            block = ref[rows, cols].astype(np.float64)
            squared_error[cols] += np.square(new[rows, cols].astype(np.float64) - block).sum(axis=0)
            squared_norm[cols] += np.square(block).sum(axis=0)
    error, norm = np.sqrt(squared_error), np.sqrt(squared_norm)
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(norm > 0, error / safe, np.where(error > 0, np.inf, 0.0))


def channel_errors(reference: np.ndarray, candidate: np.ndarray, axis: int | None = 1) -> np.ndarray:
    """Per channel along `axis`: RMS(candidate − reference) over the channel's FP32 standard deviation, over every
    other position — how far values stray, in units of the spread they carry. Correlation is blind to a shift or a
    rescaled channel (an INT8 bias shift moves a depth map by a constant and keeps its correlation at 1); this is
    not: noise alone at correlation 0.98 reads 0.2. A channel constant in the reference is NaN."""
    if np.shape(reference) != np.shape(candidate):
        raise QuantserveError(f"cannot compare outputs of shapes {np.shape(reference)} and {np.shape(candidate)}")
    ref, new = _channels_last(reference, axis), _channels_last(candidate, axis)
    errors = np.full(ref.shape[1], np.nan)
    if not len(ref):
        return errors
    for cols in column_blocks(ref):
        block = ref[:, cols].astype(np.float64)
        rms = np.sqrt(np.mean(np.square(new[:, cols].astype(np.float64) - block), axis=0))
        spread = block.std(axis=0)
        errors[cols] = np.where(_constant(block), np.nan, rms / np.where(spread > 0, spread, 1.0))
    return errors


def channel_spreads(reference: np.ndarray, axis: int) -> np.ndarray:
    """Per channel along `axis`: the reference's standard deviation over every other position."""
    ref = _channels_last(reference, axis)
    spreads = np.zeros(ref.shape[1])
    for cols in column_blocks(ref):
        spreads[cols] = ref[:, cols].astype(np.float64).std(axis=0) if len(ref) else 0.0
    return spreads
