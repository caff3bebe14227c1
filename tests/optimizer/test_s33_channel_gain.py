"""A rescaled channel is refused: a [0, 1] regressor whose last layer was scaled by 1.3 shipped at channel error
0.173 < 0.25 (correlation is blind to a gain) with its error against the truth 6.3× FP32's. Noise at the same
spread error keeps its slope at 1 and still holds."""

from __future__ import annotations

import numpy as np

from optimizer.channel_gain import gain_errors
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from quantserve.metrics import channel_correlations


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_a_rescaled_regression_channel_is_refused_and_noise_holds() -> None:
    rng = np.random.default_rng(33)
    z = rng.normal(0.0, 1.2, (400, 1))
    fp32 = _sigmoid(z).astype(np.float32)
    rescaled = _sigmoid(1.3 * z).astype(np.float32)
    report = measure_drift({"y": fp32}, {"y": rescaled}, {"y": "regression"}, DriftBudget())
    record = report.outputs["y"]
    assert record["channel_error_worst"] < 0.25 and record["channel_correlation_worst"] > 0.98, "the old figures pass"
    lines = [v.line() for v in report.violations]
    assert lines and lines[0].startswith("output 'y': worst channel gain error (|slope - 1|) 0.18"), lines
    assert "> budget 0.1" in lines[0], lines
    noisy = (fp32 + rng.normal(0.0, 0.15 * float(fp32.std()), fp32.shape)).astype(np.float32)
    held = measure_drift({"y": fp32}, {"y": noisy}, {"y": "regression"}, DriftBudget())
    assert held.holds and held.outputs["y"]["channel_gain_worst"] < 0.05, held.violations


def test_gain_errors_per_channel() -> None:
    """Guard: channel 1 halved reads 0.5, an untouched one 0; a constant one and a flattened one NaN (nothing to
    scale; no longer following FP32, the correlation's to judge)."""
    rng = np.random.default_rng(34)
    ref = rng.normal(0.0, 1.0, (200, 4))
    ref[:, 2] = 3.0
    new = ref.copy()
    new[:, 1] *= 0.5
    new[:, 3] = 0.7
    gains = gain_errors(ref, new, 1, channel_correlations(ref, new, 1))
    assert np.allclose(gains[[0, 1]], [0.0, 0.5]) and np.isnan(gains[2]) and np.isnan(gains[3])
