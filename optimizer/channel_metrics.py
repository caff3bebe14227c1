"""Per-channel drift of one output: the worst channel's correlation and spread error along every axis channels may lie
on, a decoded raw head's box and score channels, and quiet channels. Split from `optimizer.drift_metrics`, which
picks these by the output's kind.

Quiet channels. A dense output of scores (every FP32 value in [0, 1], some at --label-threshold or above) may have
channels that never turn on: every FP32 value under the threshold and plainly off (under QUIET_CEILING, 0.1). Such a
channel carries noise around a small value, whose correlation means nothing: torchfcpe's (N, 200, 360) pitch
posteriorgram was refused at bin 55's correlation 0.8772, a bin whose FP32 values peak at 0.069 (std 0.0008, on in 0
of 12 800 frames), while its INT8 model kept raw pitch accuracy (0.9956 against 0.9958); 85 of the 89 bins under 0.98
were such bins, their worst absolute error 0.038. A quiet channel is judged instead by what its values can do: INT8
must not turn it on either (`quiet_fired`, refused at any value, naming the channel), and its largest absolute error
must stay within --max-quiet-error (0.05, half the plainly-off mark: one collapsed to 0 refuses where FP32 ever
reached 0.05). The record counts the quiet channels per axis (`quiet_channels`) and names the worst. Channels that
turn on, and outputs that are not scores (or turn nothing on: a [0, 1] regression, features), are judged by
correlation and spread error as before; detections and class maps too (a box coordinate in [0, 1] is not a score),
but a decoded raw head's score channels under its box threshold are quiet (`optimizer.decoded_heads`), and so are an
SSD head's anchors FP32 never fires (`optimizer.anchor_heads`). So FCPE is still refused, now at bin 293 (FP32 peak
0.266, never on, RMS error 0.41 of its spread): a bin that reaches a quarter of the range is not quiet.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from optimizer.channel_gain import gain_errors, keep_worst_gain
from optimizer.channel_stats import ChannelStats, channel_stats
from optimizer.decision_metrics import FLAG_COMMITTED
from optimizer.decoded_heads import DecodedHead
from optimizer.detection_heads import BOX_CHANNELS, detection_axis
from optimizer.drift_checks import BUDGETED
from optimizer.typed_kinds import TOKEN_KINDS
from quantserve import metrics

CROSS_AXIS_FLOOR = 0.01  # cross-axis entries whose FP32 spread is under this share of the median entry's: not judged
STILL_LEVEL = 1e-3  # a channel also under this share of its own level (|mean|) in spread is still: `_skip_still`
QUIET_CEILING = FLAG_COMMITTED  # a score channel whose FP32 values all stay under this and the threshold is quiet


def channel_axis(kind: str, values: np.ndarray) -> int | None:
    """The axis whose entries are separate channels for this kind (None: a single channel)."""
    if kind in ("detection", "dense") and values.ndim == 3:
        return detection_axis(values)
    if kind == "sequence" or kind in TOKEN_KINDS:
        return values.ndim - 1
    return 1 if values.ndim >= 2 else None


def channel_metrics(kind: str, reference: np.ndarray, candidate: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Worst per-channel correlation and relative error; channels constant in FP32 are skipped, so are still ones
    (`_skip_still`: nearly constant in FP32, next to the other channels and to their own level), and a score
    output's quiet channels are judged by their absolute error instead (`quiet_channels`). A dense output of
    three or more axes is also judged along its other candidate channel axis (`_cross_axes`): `channel_axes`
    names both with their entry counts, and the worst figures the axis they lie on."""
    axis = channel_axis(kind, reference)
    if reference.size == 0 or reference.ndim < 1:
        return {}
    stats = channel_stats(reference, candidate, axis, threshold)  # every figure along the axis in one pass
    correlations, errors = stats.correlations, stats.relative_errors
    record: dict[str, Any] = {
        "relative_error": float(metrics.relative_error(reference, candidate)[0]),
        "channels": int(correlations.size),
        "channels_constant": int(np.isnan(correlations).sum()),
        "channel_relative_error_worst": float(errors.max()),
    }
    judged = "channel_error_worst" in BUDGETED[kind]  # maps and detections: their spread errors are budgeted
    spread_errors = stats.spread_errors if judged else None
    correlations, spread_errors = _skip_still(record, reference, axis, stats, spread_errors)
    cut = quiet_cut(kind, reference, threshold)
    quiet = _quiet(record, stats, axis, cut)
    _keep_worst(record, axis, *_unless(quiet, correlations, spread_errors))
    if judged:  # a rescaled channel: `optimizer.channel_gain`
        keep_worst_gain(record, np.where(quiet, np.nan, stats.gain_errors(correlations)), axis)
    others = _cross_axes(kind, reference, axis)
    if others:  # which axes were judged, and their entries: "channels" counts axis 1's alone (an NHWC map's rows)
        record["channel_axes"] = {str(a): int(reference.shape[a]) for a in (axis, *others) if a is not None}
    for other in others:
        along = channel_stats(reference, candidate, other, threshold)
        still = _still(along.spreads)[0] | _quiet(record, along, other, cut)
        _keep_worst(record, other, *_unless(still, along.correlations, along.spread_errors))
    return record


def _still(spreads: np.ndarray) -> tuple[np.ndarray, float]:
    """Which entries' FP32 spread is under CROSS_AXIS_FLOOR of the median moving entry's, and that median (0.0 where
    nothing moves). Decided by FP32's spread alone: an entry INT8 collapses still moves in FP32 and is judged."""
    moving = spreads[spreads > 0]
    median = float(np.median(moving)) if moving.size else 0.0
    return spreads < CROSS_AXIS_FLOOR * median, median


def _skip_still(
    record: dict[str, Any],
    reference: np.ndarray,
    axis: int | None,
    stats: ChannelStats,
    spread_errors: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The channel figures with the still channels' correlations taken out (NaN), counted in `channels_still`
    (beside `channels_constant`, the exactly constant ones; the two do not overlap). A still channel is nearly
    constant in FP32: its spread is under CROSS_AXIS_FLOOR of the median moving channel's and under STILL_LEVEL of
    its own level (|mean|). Baidu LAC's (N, T, 59) emissions carry 10 unused tag slots at −13.7 ± 0.00011 (116
    float32 steps; the median channel's spread is 1.84) that INT8 rounds to one value each: their correlation read
    0, the "worst channel" of an output whose moving channels' worst is 0.994 (session 56). Both tests, not the
    first alone: a small feature moving around 0 is signal however small next to the others (a Keras head's 4 small
    features, 3e-5 of the big ones' spread, flattened to 0 by one INT8 input scale, must refuse: test_singleton_axes)
    — FP32's values decide, so INT8 collapsing a channel FP32 moves still shows. A still channel's spread error is
    measured against the median moving channel's spread instead of its own: INT8 swinging one as far as a channel
    moves still refuses where spread errors are budgeted."""
    correlations, spreads = stats.correlations, stats.spreads
    if axis is None or correlations.size < 2:
        return correlations, spread_errors
    others = tuple(a for a in range(reference.ndim) if a != axis)
    level = np.abs(reference.mean(axis=others, dtype=np.float64))
    still, median = _still(spreads)
    still &= (spreads < STILL_LEVEL * level) & ~np.isnan(correlations)  # exactly constant: counted as such already
    record["channels_still"] = int(still.sum())
    if not still.any():
        return correlations, spread_errors
    if spread_errors is not None:  # RMS over the channel's own spread → RMS over the median moving channel's
        spread_errors = np.where(still, spread_errors * spreads / median, spread_errors)
    return np.where(still, np.nan, correlations), spread_errors


def decoded_head_metrics(head: DecodedHead, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """A decoded raw head (`optimizer.decoded_heads`): its boxes matched FP32 → INT8, its box channels at the anchors
    FP32 keeps and its score channels where either model's top score reaches a tenth of the threshold. A score channel
    FP32 never turns on at the threshold is quiet (its values decide no box; the DocLayNet head's "Title", peak 0.139
    on synthetic pages, read slope 1.28 at its 5721 anchors, session 43): left out of the channel figures, judged by
    INT8 turning it on. The relative error that ranks candidates: the worst of the boxes' (1 − F1 × IoU) and the
    judged values'."""
    ref, new = head.rows(reference), head.rows(candidate)
    boxes, scores = head.box_anchors(ref), head.score_anchors(ref, new)
    record = {**head.box_metrics(ref, new), "judged_at": head.where(boxes, scores)}
    box_ref, box_new = ref[boxes][:, :BOX_CHANNELS], new[boxes][:, :BOX_CHANNELS]
    shown_ref, shown_new = ref[scores], new[scores]  # (P, 4 + K): every anchor where a channel reaches the threshold
    score_ref, score_new = shown_ref[:, BOX_CHANNELS:], shown_new[:, BOX_CHANNELS:]
    correlations = np.concatenate(
        [metrics.channel_correlations(box_ref, box_new, 1), metrics.channel_correlations(score_ref, score_new, 1)]
    )
    errors = np.concatenate(
        [metrics.channel_errors(box_ref, box_new, 1), metrics.channel_errors(score_ref, score_new, 1)]
    )
    gains = np.concatenate(
        [
            gain_errors(box_ref, box_new, 1, correlations[:BOX_CHANNELS]),
            gain_errors(score_ref, score_new, 1, correlations[BOX_CHANNELS:]),
        ]
    )
    quiet = quiet_channels(record, shown_ref, shown_new, 1, head.threshold, head.threshold)
    quiet[:BOX_CHANNELS] = False  # coordinates, not scores
    for key in ("quiet_error_worst_axis", "quiet_fired_axis"):
        if key in record:
            record[key] = head.axis
    record["quiet_channels"] = {str(head.axis): int(quiet.sum())}
    _keep_worst(record, head.axis, *_unless(quiet, correlations, errors))
    keep_worst_gain(record, np.where(quiet, np.nan, gains), head.axis)
    judged = [metrics.relative_error(*pair)[0] for pair in ((box_ref, box_new), (score_ref, score_new)) if pair[0].size]
    record.update(
        relative_error=max([float(record["relative_error"]), *(float(error) for error in judged)]),
        channels=int(correlations.size),
        channels_constant=int(np.isnan(correlations).sum()),
    )
    return record


def _unless(
    quiet: np.ndarray, correlations: np.ndarray, spread_errors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The channel figures with the quiet channels' taken out (NaN: judged by `quiet_channels` instead)."""
    if spread_errors is not None:
        spread_errors = np.where(quiet, np.nan, spread_errors)
    return np.where(quiet, np.nan, correlations), spread_errors


def quiet_cut(kind: str, reference: np.ndarray, threshold: float) -> float | None:
    """The FP32 peak under which a channel of this output is quiet (see the module's docstring): for a dense output
    of scores that turns something on at `threshold`, the lower of the threshold and QUIET_CEILING; else None."""
    if kind != "dense" or reference.size == 0 or not metrics.probabilities(reference):
        return None
    return min(threshold, QUIET_CEILING) if float(reference.max()) >= threshold else None


def quiet_channels(
    record: dict[str, Any],
    reference: np.ndarray,
    candidate: np.ndarray,
    axis: int | None,
    cut: float | None,
    threshold: float,
) -> np.ndarray:
    """Which entries along `axis` are quiet (FP32 peak under `cut`); their count, worst absolute error and the most
    values INT8 turned on in one of them (at `threshold`) go to the record, each naming axis and entry."""
    if cut is None or axis is None:
        return np.zeros(reference.shape[axis] if axis is not None else 1, dtype=bool)
    return _judge_quiet(record, axis, cut, *_channel_peaks(reference, candidate, axis, threshold))


def _quiet(record: dict[str, Any], stats: ChannelStats, axis: int | None, cut: float | None) -> np.ndarray:
    """`quiet_channels` from the figures along `axis` measured already."""
    if cut is None or axis is None:
        return np.zeros(stats.peaks.size, dtype=bool)
    return _judge_quiet(record, axis, cut, stats.peaks, stats.max_errors, stats.fired)


def _judge_quiet(
    record: dict[str, Any], axis: int, cut: float, peaks: np.ndarray, errors: np.ndarray, fired: np.ndarray
) -> np.ndarray:
    """`quiet_channels`' judgement of the entries' FP32 peaks, worst absolute errors and values turned on."""
    quiet = peaks < cut
    record["quiet_cut"] = cut
    record.setdefault("quiet_channels", {})[str(axis)] = int(quiet.sum())
    if quiet.any():
        errors, fired = np.where(quiet, errors, -np.inf), np.where(quiet, fired, 0)
        worst, most = int(np.argmax(errors)), int(np.argmax(fired))
        if errors[worst] > record.get("quiet_error_worst", -math.inf):
            record.update(quiet_error_worst=float(errors[worst]), quiet_error_worst_channel=worst)
            record["quiet_error_worst_axis"] = axis
        if fired[most] > record.get("quiet_fired", 0):
            record.update(quiet_fired=int(fired[most]), quiet_fired_channel=most, quiet_fired_axis=axis)
        record.setdefault("quiet_fired", 0)
    return quiet  # type: ignore[no-any-return]


def _channel_peaks(
    reference: np.ndarray, candidate: np.ndarray, axis: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per entry along `axis` (never 0, the samples'), over every other position: the FP32 peak, the largest
    absolute error, and how many candidate values are at `threshold` or above; a block of samples at a time."""
    others = tuple(a for a in range(reference.ndim) if a != axis)
    peaks, errors = np.full(reference.shape[axis], -np.inf), np.zeros(reference.shape[axis])
    fired = np.zeros(reference.shape[axis], dtype=np.int64)
    step = max(1, metrics.BLOCK_BYTES // max(8 * reference[0].size, 1))
    for start in range(0, len(reference), step):
        ref = reference[start : start + step].astype(np.float64)
        new = candidate[start : start + step].astype(np.float64)
        peaks = np.maximum(peaks, ref.max(axis=others))
        errors = np.maximum(errors, np.abs(new - ref).max(axis=others))
        fired += np.count_nonzero(new >= threshold, axis=others)
    return peaks, errors, fired


def _cross_axes(kind: str, reference: np.ndarray, axis: int | None) -> list[int]:
    """The other axis a dense output's channels may lie on. Its shape does not say which axis holds them: ONNX
    convolutions put them at axis 1 ((N, C, L), (N, C, H, W)), Keras exports and linear layers last ((N, L, C),
    (N, H, W, C)), and a collapsed channel shows only along its own axis — judged along axis 1 alone, an (N, H,
    W, C) map with one of its 8 channels zeroed passed at correlation 0.98, and so did an (N, 128, 16) feature
    map judged by its 16 positions. So both candidates, axis 1 and the last, are judged and the worst counts.
    Along the axis that turns out not to hold channels, each entry pools every channel, so its figures are no
    stricter than the channels' own; entries whose FP32 values barely vary (a border that is background in
    every sample) are skipped. A candidate of one entry is looked past to the nearest axis of more: (N, 1, T, C)
    is judged along T and C, (N, H, W, 1) along H and W — openWakeWord's melspectrogram (N, 1, T, 32) was judged as
    one map, where a collapsed mel band would pool into the other 31 (outputs of a single wide axis are read as
    (N, D) before this: `optimizer.real_axes`)."""
    if kind != "dense" or reference.ndim < 3 or axis is None:
        return []
    wide = [a for a in range(1, reference.ndim) if reference.shape[a] > 1]
    if len(wide) < 2:
        return []
    return [c for c in dict.fromkeys((wide[0], wide[-1])) if c != axis]


def _keep_worst(
    record: dict[str, Any], axis: int | None, correlations: np.ndarray, spread_errors: np.ndarray | None
) -> None:
    """Fold one axis's per-entry correlations and spread errors into the record's worst, naming axis and entry."""
    if not np.all(np.isnan(correlations)):
        worst = int(np.nanargmin(correlations))
        if correlations[worst] < record.get("channel_correlation_worst", math.inf):
            record.update(
                channel_correlation_worst=float(correlations[worst]), channel_worst=worst, channel_worst_axis=axis
            )
    if spread_errors is not None and not np.all(np.isnan(spread_errors)):
        worst = int(np.nanargmax(spread_errors))
        if spread_errors[worst] > record.get("channel_error_worst", -math.inf):
            record.update(
                channel_error_worst=float(spread_errors[worst]),
                channel_error_worst_channel=worst,
                channel_error_worst_axis=axis,
            )
