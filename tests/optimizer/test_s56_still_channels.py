"""Channels still in FP32 (session 56): Baidu LAC's (N, T, 59) emissions carry 10 unused tag slots at −13.7 ± 0.00011
(the median channel's spread is 1.84) that INT8 rounds to one value each; their correlation read 0, printed as the
worst channel of an output whose moving channels' worst is 0.994. Such channels are skipped and counted as still;
a channel FP32 moves and INT8 collapses still shows, however small next to the others."""

from __future__ import annotations

import numpy as np

from optimizer.channel_metrics import channel_metrics


def _emissions(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, T, 12) FP32 emissions, the last 3 channels still (float noise around −13.7), and INT8's: a little
    rounding noise on every moving channel, the still ones rounded to one value (as LAC's INT8 model does)."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 2.0, (40, 16, 12)).astype(np.float32)
    reference[..., 9:] = (-13.7 + rng.normal(0.0, 0.0001, (40, 16, 3))).astype(np.float32)
    candidate = reference + rng.normal(0.0, 0.02, reference.shape).astype(np.float32)
    candidate[..., 9:] = np.float32(-13.7)
    return reference, candidate


def test_still_channels_are_not_the_worst_channel() -> None:
    reference, candidate = _emissions()
    record = channel_metrics("token_classification", reference, candidate)
    assert record["channels_still"] == 3 and record["channels_constant"] == 0, record
    assert record["channel_correlation_worst"] > 0.99, record
    assert record["channel_worst"] < 9, record


def test_a_collapsed_moving_channel_is_still_the_worst() -> None:
    reference, candidate = _emissions()
    candidate[..., 4] = 0.0  # INT8 zeroes a channel FP32 moves: FP32's values decide the skip, not INT8's
    record = channel_metrics("token_classification", reference, candidate)
    assert record["channel_worst"] == 4 and abs(record["channel_correlation_worst"]) < 1e-6, record
    assert record["channels_still"] == 3, record


def test_a_small_feature_int8_flattens_is_not_still() -> None:
    """A Keras head's small features (3e-5 of the big ones' spread) moving around 0: signal, not a still channel."""
    reference, candidate = _emissions()
    reference[..., 2] *= 1e-5
    candidate[..., 2] = 0.0
    record = channel_metrics("dense", reference, candidate)
    assert record["channels_still"] == 3, record
    assert record["channel_worst"] == 2 and record["channel_correlation_worst"] == 0.0, record


def test_a_dense_map_is_not_refused_for_a_still_channel_but_is_for_one_int8_swings() -> None:
    reference, candidate = _emissions(1)
    record = channel_metrics("dense", reference, candidate)
    assert record["channels_still"] == 3 and record["channel_correlation_worst"] > 0.99, record
    assert record["channel_error_worst"] < 0.05, record  # the still channels' error, against a moving channel's spread
    candidate[..., 10] += np.random.default_rng(2).normal(0.0, 2.0, candidate.shape[:2])  # INT8 swings a still one
    record = channel_metrics("dense", reference, candidate)
    assert record["channel_error_worst"] > 0.5 and record["channel_error_worst_channel"] == 10, record


def test_an_exactly_constant_channel_counts_as_constant_not_still() -> None:
    reference, candidate = _emissions()
    reference[..., 11] = candidate[..., 11] = -13.7
    record = channel_metrics("token_classification", reference, candidate)
    assert record["channels_constant"] == 1 and record["channels_still"] == 2, record
