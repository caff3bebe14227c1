"""Every per-channel figure `optimizer.channel_metrics` judges along one axis, from one float64 copy of each block of
channels: correlation, spread error, relative error, both spreads, and the quiet channels' peak, worst absolute error
and values turned on.

Each figure was its own pass (`quantserve.metrics`), each moving the axis last and copying the output to float64
again: CenterNet's (40, 128, 128, 80) heatmap, judged along two axes, made about 60 full-size float64 passes and took
65 s on a busy 2-core machine, one unstoppable piece of the INT8 search (session 68). Here each block of channels is
copied once and every figure read from it, with the same reductions over the same blocks as `quantserve.metrics`
(float64, axis 0 of the (observations, channels) block), so each figure is the same number to the bit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from optimizer.channel_gain import FOLLOWS
from quantserve import metrics
from quantserve.metrics.blocks import row_blocks


@dataclass(frozen=True)
class ChannelStats:
    """Per entry along one axis, over every other position (`metrics` names the function each equals)."""

    correlations: np.ndarray  # `channel_correlations`: NaN where FP32 is constant
    relative_errors: np.ndarray  # `relative_error(…, axis)`
    spread_errors: np.ndarray  # `channel_errors`: NaN where FP32 is constant
    spreads: np.ndarray  # `channel_spreads` of the reference
    new_spreads: np.ndarray  # … of the candidate
    peaks: np.ndarray  # the reference's largest value
    max_errors: np.ndarray  # the largest |candidate − reference|
    fired: np.ndarray  # how many candidate values are at the threshold or above

    def gain_errors(self, correlations: np.ndarray) -> np.ndarray:
        """`optimizer.channel_gain.gain_errors` from these spreads, with `correlations` (still channels NaN)."""
        slope = correlations * self.new_spreads / np.where(self.spreads > 0, self.spreads, 1.0)
        return np.where(correlations >= FOLLOWS, np.abs(slope - 1.0), np.nan)  # type: ignore[no-any-return]


def channel_stats(
    reference: np.ndarray, candidate: np.ndarray, axis: int | None, threshold: float = 0.5
) -> ChannelStats:
    """The figures along `axis` (None: the whole output as one channel, as `quantserve.metrics` reads it)."""
    if np.shape(reference) != np.shape(candidate):  # the message `metrics.channel_correlations` gives
        metrics.channel_correlations(reference, candidate, axis)
    if axis is None:
        return _one_channel(reference, candidate, threshold)
    moved_ref, moved_new = np.moveaxis(reference, axis, -1), np.moveaxis(candidate, axis, -1)
    channels = reference.shape[axis]
    rows = reference.size // channels
    if channels < 2 or metrics.BLOCK_BYTES // max(rows * 8, 1) < 2:
        return _by_columns(moved_ref, moved_new, rows, threshold)  # `metrics` sums a single column pairwise
    return _by_rows(moved_ref, moved_new, threshold)


def _by_rows(ref: np.ndarray, new: np.ndarray, threshold: float) -> ChannelStats:
    """The figures of channels-last `ref` and `new` from blocks of their leading axis holding every channel: two
    passes (sums and extremes, then the sums about the means), each block copied to float64 once. A sum over a
    block continues the one before it value by value (`_continued`), as `metrics` sums a block of columns over all
    its rows: the same order, the same bits, with every channel in one inner loop of NumPy's, not a dozen."""
    channels = ref.shape[-1]
    per_row = max(int(np.prod(ref.shape[1:], dtype=np.int64)) * 8, 1)
    step = max(1, metrics.BLOCK_BYTES // per_row)
    blocks = [slice(start, start + step) for start in range(0, len(ref), step)]
    sums = np.zeros((4, channels))  # reference, candidate, squared error, squared reference
    low, high, err_low, err_high = (np.full(channels, start) for start in (np.inf, -np.inf, np.inf, -np.inf))
    fired = np.zeros(channels, dtype=np.int64)
    first = True
    for block in blocks:
        r, c = _float64(ref[block]), _float64(new[block])
        diff = c - r
        np.minimum(low, r.min(axis=0), out=low)
        np.maximum(high, r.max(axis=0), out=high)
        np.minimum(err_low, diff.min(axis=0), out=err_low)
        np.maximum(err_high, diff.max(axis=0), out=err_high)
        fired += np.count_nonzero(c >= threshold, axis=0)
        diff *= diff
        for i, values in enumerate((r, c, diff)):
            sums[i] = _continued(sums[i], values, first)
        sums[3] = _continued(sums[3], np.multiply(r, r, out=c), first)  # the candidate's copy is spent
        first = False
    rows = ref.size // channels
    means = sums[0] / rows, sums[1] / rows
    centred = np.zeros((3, channels))  # reference², candidate², their product: about the means
    first = True
    for block in blocks:
        r, c = _float64(ref[block]), _float64(new[block])
        r -= means[0]
        c -= means[1]
        centred[2] = _continued(centred[2], r * c, first)
        centred[0] = _continued(centred[0], np.multiply(r, r, out=r), first)
        centred[1] = _continued(centred[1], np.multiply(c, c, out=c), first)
        first = False
    constant = (high - low) <= 1e-9 * np.maximum(np.maximum(high, -low), 1e-30)
    return _stats(centred, sums[2], _relative(sums[2], sums[3]), constant, rows, high, (err_low, err_high), fired)


def _continued(total: np.ndarray, values: np.ndarray, first: bool) -> np.ndarray:
    """`total` and then each row of `values` added in turn (NumPy's own order over axis 0); `values` kept as it was."""
    if first:
        return np.add.reduce(values, axis=0)  # type: ignore[no-any-return]
    head = values[0].copy()
    values[0] += total
    summed = np.add.reduce(values, axis=0)
    values[0] = head
    return summed  # type: ignore[no-any-return]


def _stats(
    centred: np.ndarray,
    squared_error: np.ndarray,
    relative_errors: np.ndarray,
    constant: np.ndarray,
    rows: int,
    peaks: np.ndarray,
    diff_range: tuple[np.ndarray, np.ndarray],
    fired: np.ndarray,
) -> ChannelStats:
    """ChannelStats from the sums about the means (reference², candidate², product), as `metrics` computes each."""
    ref_norm, new_norm = np.sqrt(centred[0]), np.sqrt(centred[1])
    denominator = np.where(ref_norm * new_norm > 0, ref_norm * new_norm, 1.0)
    correlation = np.where(new_norm > 0, centred[2] / denominator, 0.0)
    correlations = np.where(constant, np.nan, np.clip(correlation, -1.0, 1.0))
    spreads, new_spreads = np.sqrt(centred[0] / rows), np.sqrt(centred[1] / rows)
    rms = np.sqrt(squared_error / rows)
    spread_errors = np.where(constant, np.nan, rms / np.where(spreads > 0, spreads, 1.0))
    max_errors = np.maximum(diff_range[1], -diff_range[0])
    return ChannelStats(correlations, relative_errors, spread_errors, spreads, new_spreads, peaks, max_errors, fired)


def _by_columns(ref: np.ndarray, new: np.ndarray, rows: int, threshold: float) -> ChannelStats:
    """The figures a block of columns at a time, as `metrics` copies them: where a block is one column wide."""
    parts = [
        _block_stats(_float64(ref[..., cols]), _float64(new[..., cols]), threshold)
        for cols in _blocks(rows, ref.shape[-1])
    ]
    return ChannelStats(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ChannelStats)))


def _blocks(rows: int, channels: int) -> list[slice]:
    """`column_blocks` of the (rows, channels) matrix `quantserve.metrics` would copy."""
    step = max(1, metrics.BLOCK_BYTES // max(rows * 8, 1))
    return [slice(start, start + step) for start in range(0, channels, step)]


def _float64(values: np.ndarray) -> np.ndarray:
    """Channels-last `values` as a float64 (rows, channels) matrix, in `metrics._channels_last`'s order."""
    out = np.empty((values.size // max(values.shape[-1], 1), values.shape[-1]))
    out.reshape(values.shape)[...] = values
    return out


def _block_stats(ref: np.ndarray, new: np.ndarray, threshold: float) -> ChannelStats:
    """The figures of a (rows, channels) float64 block (`ref` and `new` centred in place), each reduction the one
    `quantserve.metrics` runs: a sum over axis 0, or `relative_error`'s per-row-block sums."""
    diff = new - ref
    diff_range = diff.min(axis=0), diff.max(axis=0)
    diff *= diff
    squared_error, relative = diff.sum(axis=0), _rows_summed(diff, ref)
    relative_errors = _relative(relative, _rows_summed(np.square(ref), ref))
    peaks, lows = ref.max(axis=0), ref.min(axis=0)
    fired = np.count_nonzero(new >= threshold, axis=0)
    constant = (peaks - lows) <= 1e-9 * np.maximum(np.maximum(peaks, -lows), 1e-30)
    ref -= ref.mean(axis=0)
    new -= new.mean(axis=0)
    centred = np.stack([np.add.reduce(ref * ref, axis=0), np.add.reduce(new * new, axis=0), np.sum(ref * new, axis=0)])
    return _stats(centred, squared_error, relative_errors, constant, len(ref), peaks, diff_range, fired)


def _rows_summed(values: np.ndarray, block: np.ndarray) -> np.ndarray:
    """`values` summed over axis 0 a row block at a time, as `metrics.relative_error` accumulates them."""
    total = np.zeros(values.shape[1])
    for rows in row_blocks(block):
        total += values[rows].sum(axis=0)
    return total


def _relative(squared_error: np.ndarray, squared_norm: np.ndarray) -> np.ndarray:
    error, norm = np.sqrt(squared_error), np.sqrt(squared_norm)
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(norm > 0, error / safe, np.where(error > 0, np.inf, 0.0))  # type: ignore[no-any-return]


def _one_channel(reference: np.ndarray, candidate: np.ndarray, threshold: float) -> ChannelStats:
    """The whole output as one channel (a 1-D output), by `quantserve.metrics` itself: small, and its whole-tensor
    spreads are summed as `channel_gain` sums them."""
    ref, new = np.asarray(reference, np.float64).ravel(), np.asarray(candidate, np.float64).ravel()
    return ChannelStats(
        metrics.channel_correlations(reference, candidate, None),
        metrics.relative_error(reference, candidate, None),
        metrics.channel_errors(reference, candidate, None),
        np.array([np.std(reference, dtype=np.float64)]),
        np.array([np.std(candidate, dtype=np.float64)]),
        np.array([ref.max(initial=-np.inf)]),
        np.array([np.abs(new - ref).max(initial=0.0)]),
        np.array([np.count_nonzero(new >= threshold)]),
    )
