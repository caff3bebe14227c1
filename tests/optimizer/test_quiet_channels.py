"""A dense output of scores whose channels include some that never turn on (torchfcpe's (N, 200, 360) pitch
posteriorgram: bin 55 peaks at 0.069 in FP32, noise around a small value): those quiet channels are judged by
INT8 not turning them on and by their absolute error, not by a correlation of noise — and a channel that does
turn on, or an output that is not scores, is judged as before."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport

FIRING = 20  # bins 0-19 carry a moving peak (bin 20 too, from the peak's tail); bins 22-39 never reach 0.1


def _posteriorgram(seed: int = 0) -> np.ndarray:
    """(32, 50, 40) sigmoid-like scores: per frame a bump of height 0.9 centred on one of the first FIRING bins,
    over a floor of 0.01 with a little noise (std 0.0008): every bin past the bump's reach is quiet."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, FIRING, size=(32, 50, 1))
    bump = 0.9 * np.exp(-0.5 * np.square(np.arange(40) - centres))
    floor = 0.01 + rng.normal(0.0, 0.0008, size=(32, 50, 40))
    return np.clip(bump + floor, 0.0, 1.0).astype(np.float32)


def _int8_like(reference: np.ndarray, seed: int = 1) -> np.ndarray:
    """The reference with noise of an INT8 model's size on a [0, 1] output (std 0.003, under one uint8 step)."""
    noise = np.random.default_rng(seed).normal(0.0, 0.003, size=reference.shape)
    return np.clip(reference + noise, 0.0, 1.0).astype(np.float32)


def _drift(reference: np.ndarray, candidate: np.ndarray) -> DriftReport:
    return measure_drift({"latent": reference}, {"latent": candidate}, {"latent": "dense"}, DriftBudget())


def _lines(report: DriftReport) -> list[str]:
    return [violation.line("dense") for violation in report.violations]


def test_quiet_bins_with_int8_noise_pass_and_are_recorded() -> None:
    reference = _posteriorgram()
    report = _drift(reference, _int8_like(reference))
    record = report.outputs["latent"]
    assert report.holds, _lines(report)
    assert record["quiet_cut"] == 0.1 and record["quiet_channels"] == {"1": 0, "2": 18}
    assert record["quiet_error_worst_axis"] == 2 and record["quiet_error_worst_channel"] >= 22
    assert 0.005 < record["quiet_error_worst"] < 0.05 and record["quiet_fired"] == 0
    assert record["channel_correlation_worst"] > 0.98  # the bins that turn on still judged by correlation


def test_a_quiet_bin_int8_turns_on_is_refused_naming_it() -> None:
    reference = _posteriorgram()
    candidate = _int8_like(reference)
    candidate[3, 7:10, 30] = 0.6  # three frames of bin 30, never above 0.02 in FP32
    report = _drift(reference, candidate)
    assert not report.holds
    assert _lines(report)[0] == (
        "output 'latent' (dense): INT8 turns on a channel FP32 never does (axis 2, entry 30, at --label-threshold "
        "0.5): 3 values"
    )
    assert report.outputs["latent"]["quiet_fired"] == 3


def test_a_quiet_bin_collapsed_is_refused_by_its_absolute_error() -> None:
    reference = _posteriorgram()
    reference[5, 5, 33] = 0.08  # bin 33 stays off (under 0.1) but once reaches 0.08
    candidate = _int8_like(reference)
    candidate[..., 33] = 0.0
    report = _drift(reference, candidate)
    assert not report.holds
    assert _lines(report) == [
        "output 'latent' (dense): worst absolute error of a channel never on in FP32 (axis 2, entry 33) 0.08 > "
        "budget 0.05"
    ]


def test_a_collapsed_bin_that_turns_on_is_still_refused() -> None:
    reference = _posteriorgram()
    candidate = _int8_like(reference)
    candidate[..., 5] = 0.01  # a firing bin quantized to its floor
    report = _drift(reference, candidate)
    assert not report.holds
    assert _lines(report)[0] == "output 'latent' (dense): worst channel correlation (axis 2, entry 5) 0 < budget 0.98"


@pytest.mark.parametrize(
    "rescale",
    [lambda x: 8.0 * x - 4.0, lambda x: 0.4 * x],  # logits (not in [0, 1]); scores that never turn on at 0.5
    ids=["logits", "nothing-on"],
)
def test_an_output_not_read_as_scores_keeps_its_channel_judgement(rescale: object) -> None:
    reference = _posteriorgram()
    candidate = _int8_like(reference)
    reference, candidate = rescale(reference), rescale(candidate)  # type: ignore[operator]
    report = _drift(reference, candidate)
    record = report.outputs["latent"]
    assert "quiet_channels" not in record and "quiet_error_worst" not in record
    assert not report.holds and record["channel_worst_axis"] == 2 and record["channel_worst"] >= 22
    assert record["channel_correlation_worst"] < 0.5  # noise around the floor: today's verdict, unchanged
