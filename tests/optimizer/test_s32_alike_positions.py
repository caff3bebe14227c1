"""(N, T, C ≥ 64) raw values around a fixed point per position are a dense regression, not per-position features.

A forecaster's (N, 24, 128) stations in kelvin read `token_embedding` and shipped on cosine 0.9994 with every value
22 K off (RMSE 0.43 → 23.76 K), where the same rows as (N, 128) were read dense and refused.
"""

from __future__ import annotations

import numpy as np

from optimizer.output_kinds import infer_kind


def _kelvin(rng: np.random.Generator) -> np.ndarray:
    stations = 285.0 + 10.0 * rng.random(128)  # each station's own climate
    hours = 3.0 * np.sin(np.linspace(0, np.pi, 24))[:, None]  # the day's warming
    return (stations + hours + rng.normal(0, 1.5, (256, 24, 128))).astype(np.float32)


def test_a_forecast_in_kelvin_per_hour_is_dense() -> None:
    assert infer_kind(_kelvin(np.random.default_rng(0)), None) == "dense"


def test_hidden_states_per_position_stay_features() -> None:
    states = np.random.default_rng(1).normal(0, 1, (64, 24, 128)).astype(np.float32)  # each pointing its own way
    assert infer_kind(states, None) == "token_embedding"
