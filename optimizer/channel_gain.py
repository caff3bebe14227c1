"""A channel's gain, INT8 against FP32: the least-squares slope of its values on FP32's, how far from 1.

Correlation is blind to a rescaled channel, and the spread error (RMS over FP32's std, `quantserve.metrics.
channel_errors`) lets one through up to its budget of 0.25, which noise alone at correlation 0.98 reaches: a [0, 1]
regressor whose last layer was scaled by 1.3 shipped at channel error 0.173 with its error against the truth 6.3×
FP32's (MAE 0.0062 → 0.039; session 33). Noise leaves the slope at 1 — INT8's rounding is centred, its errors do not
follow the values — so a budget on |slope − 1| tells a rescaled channel from a noisy one: 0.1 by default
(`--max-channel-gain`). The slope is the correlation times the ratio of the spreads, cov / var of FP32's values.
It is judged where the channel still follows FP32 (correlation ≥ FOLLOWS): one that does not is the correlation's
to refuse, and a collapsed channel named three times over said nothing more.
"""

from __future__ import annotations

import numpy as np

from quantserve import metrics

FOLLOWS = 0.9  # from this correlation on, a channel's INT8 values follow FP32's and their gain is judged


def gain_errors(reference: np.ndarray, candidate: np.ndarray, axis: int | None, correlations: np.ndarray) -> np.ndarray:
    """Per channel along `axis`: |slope − 1| of the candidate's values regressed on the reference's, over every
    other position; NaN for a channel constant in the reference (nothing to scale) or that no longer follows it.
    `correlations`: the channels' (`quantserve.metrics.channel_correlations`), measured already by the caller."""
    if axis is None:
        spreads = np.array([np.std(reference, dtype=np.float64)]), np.array([np.std(candidate, dtype=np.float64)])
    else:
        spreads = metrics.channel_spreads(reference, axis), metrics.channel_spreads(candidate, axis)
    ref_spread, new_spread = spreads
    slope = correlations * new_spread / np.where(ref_spread > 0, ref_spread, 1.0)
    return np.where(correlations >= FOLLOWS, np.abs(slope - 1.0), np.nan)  # type: ignore[no-any-return]


def keep_worst_gain(record: dict, gains: np.ndarray, axis: int | None) -> None:
    """The worst channel's gain error into the record, naming the channel (quiet ones are NaN, left out)."""
    if gains.size and not np.all(np.isnan(gains)):
        worst = int(np.nanargmax(gains))
        record.update(channel_gain_worst=float(gains[worst]), channel_gain_worst_channel=worst)
        if axis is not None:
            record["channel_gain_worst_axis"] = axis
