"""`--output-kind NAME=angle`: an angle in radians is judged on FP32's turn (session 37, issue 9).

AFIS's LEADER fingerprint network (session 34) answers minutia directions in (−π, π]: the same direction answered as
π − ε by one run and −π + ε by another differs by 2π as a value, and a regression's channel figures read that as a
broken channel. There was no kind for it: a faithful model was refused, or judged only by a --metric."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import parse_output_kinds
from optimizer.typed_kinds import check_typed_kind
from quantserve.errors import QuantserveError


def _directions(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FP32 directions (N, 4, 16, 16) spread over the circle, many near ±π, and INT8's within 0.01 rad of them,
    wrapped into (−π, π] as the model answers them."""
    rng = np.random.default_rng(seed)
    fp32 = rng.uniform(-np.pi, np.pi, (32, 4, 16, 16)).astype(np.float32)
    fp32[:, :, :4] = np.pi - rng.uniform(0, 0.005, (32, 4, 4, 16))  # a band along the branch cut
    int8 = fp32 + rng.uniform(-0.01, 0.01, fp32.shape).astype(np.float32)
    int8 = (np.remainder(int8 + np.pi, 2 * np.pi) - np.pi).astype(np.float32)  # the same angles, wrapped
    return fp32, int8


def test_a_faithful_angle_holds_as_an_angle_and_misses_as_a_regression() -> None:
    fp32, int8 = _directions()
    assert np.abs(int8 - fp32).max() > 6.0  # as values, some are 2π apart
    as_values = measure_drift({"dir": fp32}, {"dir": int8}, {"dir": "regression"}, DriftBudget())
    assert not as_values.holds
    as_angles = measure_drift({"dir": fp32}, {"dir": int8}, {"dir": "angle"}, DriftBudget())
    assert as_angles.holds, [v.line() for v in as_angles.violations]
    record = as_angles.outputs["dir"]
    assert record["kind"] == "angle"
    assert 0.004 < record["angle_error_mean_rad"] < 0.006 and record["angle_error_worst_rad"] <= 0.0101


def test_an_angle_really_off_still_misses() -> None:
    fp32, _ = _directions()
    rng = np.random.default_rng(1)
    broken = fp32 + rng.normal(0, 1.0, fp32.shape).astype(np.float32)  # a radian off: broken, whatever the turn
    report = measure_drift({"dir": fp32}, {"dir": broken}, {"dir": "angle"}, DriftBudget())
    assert not report.holds and report.outputs["dir"]["angle_error_mean_rad"] > 0.5


def test_angle_is_an_override_for_float_outputs_only() -> None:
    assert parse_output_kinds(["dir=angle"]) == {"dir": "angle"}
    with pytest.raises(QuantserveError, match=r"--output-kind dir=angle: output 'dir' holds int64 values; an angle"):
        check_typed_kind("dir", "angle", np.zeros((4, 2), np.int64))
