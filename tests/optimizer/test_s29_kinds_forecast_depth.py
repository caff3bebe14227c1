"""A forecast whose features have different units, and a depth map, are dense: not CTC logits judged by decoded
sequences, not hidden states judged by cosine (optimizer.row_kinds.shared_scale, smooth_rows; probe pm9 F2, F3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds

RNG = np.random.default_rng(29)


def _forecast(rows: int = 300, horizon: int = 16) -> np.ndarray:
    """A PatchTST forecast (N, 16, 3): channels of std about 1.5, 45 and 1500, each a level and a trend per sample,
    all changing sign, so the softmax commits to whichever large channel is up and the argmax takes all three."""
    steps = np.linspace(0.0, 1.0, horizon)[None, :]
    channels = [
        scale * (RNG.normal(size=(rows, 1)) + RNG.normal(size=(rows, 1)) * steps) for scale in (1.0, 30.0, 1000.0)
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def _room(rows: int, height: int, width: int) -> np.ndarray:
    """Positive depth maps in metres, as GLPN's: a floor farther up the image and a smooth blob, up to 10 m."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    maps = []
    for _ in range(rows):
        plane = 0.5 + 9.5 * (1.0 - y) ** RNG.uniform(1.0, 3.0)
        cx, cy, size = RNG.uniform(0.2, 0.8, 3)
        blob = RNG.uniform(-4.0, 4.0) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.05 + 0.1 * size))
        maps.append(np.clip(plane + blob, 0.35, 10.0))
    return np.asarray(maps, dtype=np.float32)


def _street(rows: int, height: int, width: int) -> np.ndarray:
    """A street between walls, up to 80 m at its vanishing point (a column that varies): each image row's softmax
    commits to its farthest column, which read the map as CTC logits before it could be read as anything else."""
    x, y = np.arange(width) / width, np.arange(height)[:, None] / height
    maps = [np.clip((0.05 + 0.3 * y) / (np.abs(x - RNG.uniform(0.2, 0.8)) + 0.004), 0.5, 80.0) for _ in range(rows)]
    return np.asarray(maps, dtype=np.float32)


def _judged(reference: np.ndarray, candidate: np.ndarray) -> tuple[str, list[str]]:
    """The kind measure_drift infers (default budget, no overrides) and the metrics it refuses on."""
    report = measure_drift({"out": reference}, {"out": candidate.astype(np.float32)}, {}, DriftBudget())
    return report.outputs["out"]["kind"], [violation.metric for violation in report.violations]


def test_a_forecast_of_features_in_different_units_is_dense_not_a_sequence() -> None:
    forecast = _forecast()
    assert infer_output_kinds({"prediction": forecast}) == {"prediction": "dense"}
    flat = forecast.copy()
    flat[..., 0] = forecast[..., 0].mean()  # channel 0's forecast a flat line: held at sequence agreement 0.98
    kind, refused = _judged(forecast, flat)
    assert kind == "dense" and "channel_correlation_worst" in refused
    faithful = forecast + RNG.normal(size=forecast.shape) * forecast.std(axis=(0, 1)) * 0.005
    assert _judged(forecast, faithful) == ("dense", [])


def test_class_logits_of_one_scale_stay_a_sequence() -> None:
    """A CTC head: blank on most frames, characters used unevenly (some once), every logit varying a little
    around its level, a per-frame offset on all of them (the softmax ignores it)."""
    frames, classes = 16 * 40, 40
    logits = RNG.normal(0.0, 1.0, (frames, classes)) + RNG.normal(0.0, 3.0, (frames, 1))
    chars = RNG.choice(np.arange(1, classes), size=frames, p=np.r_[0.5, np.full(classes - 2, 0.5 / (classes - 2))])
    spoken = RNG.random(frames) < 0.3
    logits[np.arange(frames), np.where(spoken, chars, 0)] += 9.0
    assert infer_output_kinds({"logits": logits.reshape(16, 40, classes)}) == {"logits": "sequence"}


@pytest.mark.parametrize(
    ("make", "shape"),
    [(_room, (48, 64, 64)), (_room, (24, 96, 128)), (_street, (48, 64, 64))],
    ids=["room-64x64", "room-96x128", "street-64x64"],
)
def test_a_depth_map_is_dense_and_its_scale_and_offset_are_judged(
    make: Callable[..., np.ndarray], shape: tuple[int, int, int]
) -> None:
    """Read as hidden states, GLPN's (N, 64, 64) depth held cosine 1.0000 with every depth ×1.3 (AbsRel 0.096 →
    0.295) and 0.9996 with 1.5 m added; a street's, read as CTC logits, would be judged by its farthest columns."""
    depth = make(*shape)
    assert infer_output_kinds({"predicted_depth": depth}) == {"predicted_depth": "dense"}
    assert _judged(depth, depth * 1.3)[1], "depth ×1.3 passed"
    assert _judged(depth, depth + 1.5)[1], "a 1.5 m offset passed"
    assert _judged(depth, depth * (1 + 0.001 * RNG.normal(size=depth.shape))) == ("dense", [])


def test_hidden_states_without_a_token_input_stay_token_embedding() -> None:
    """Features in no order: neighbouring ones do not move together, whatever their scale (an outlier channel)."""
    hidden = RNG.normal(0.0, 1.0, (16, 50, 192))
    hidden[..., 7] *= 8.0
    positive = np.abs(RNG.normal(0.0, 1.0, (16, 64, 64)))  # positive, (N, H, W)-shaped, yet features
    assert infer_output_kinds({"frames": hidden, "patches": positive}) == {
        "frames": "token_embedding",
        "patches": "token_embedding",
    }
