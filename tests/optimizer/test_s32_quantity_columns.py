"""Columns of different quantities are not class scores, and a one-value-per-position map's refusal says what to do.

OpenSpindleNet (brainmaze-eeg-models 0.1.0) emits, per one-second segment of a 30 s window, a confidence, a centre
offset and a duration (N, 30, 3), each read through its own sigmoid. Its spreads (4.5, 1.0, 0.48) lie within the
shared-scale rule's 10×, so it was read as 3-class CTC logits and a faithful INT8 build (spindle F1 0.9944 against
FP32) was refused at decoded-sequence agreement 0.8688 — near-ties between offset and duration, per-column correlation
0.9928. Its confidence wins rising 11.1, its duration 0.40 (`optimizer.row_kinds.win_rise_ratio`: 28×); class logits
rise alike. Its (N, 7500, 1) segmentation was refused at position 7346's correlation with no word of what to do.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.row_kinds import win_rise_ratio


def _segments(rows: int = 200) -> np.ndarray:
    """(N, 30, 3) confidence (a spindle on 12 % of segments), centre offset and duration logits, as OpenSpindleNet's:
    the duration rising with the confidence, the offset on its own; their wins 31× apart (the real head's: 28×)."""
    rng = np.random.default_rng(32)
    spindle = rng.random((rows, 30)) < 0.12
    confidence = np.where(spindle, rng.normal(3.0, 2.0, spindle.shape), rng.normal(-7.0, 2.5, spindle.shape))
    offset = rng.normal(0.0, 1.0, spindle.shape)
    duration = -0.83 + 0.2 * (confidence + 4.9) + rng.normal(0.0, 0.3, spindle.shape)
    return np.stack([confidence, offset, duration], axis=-1).astype(np.float32)


def _frames(rows: int = 64, second_rise: float = 0.0) -> np.ndarray:
    """(N, 40, 3) per-frame class logits: class 0 the default (70 %), classes 1 and 2 firing by 10 and 10 (or, with
    `second_rise`, class 2 raised by 2.5 and firing by that alone: its wins 5× smaller than class 1's)."""
    rng = np.random.default_rng(7)
    fire = rng.choice(3, size=(rows, 40), p=[0.7, 0.2, 0.1])
    logits = rng.normal(0.0, 1.0, (rows, 40, 3))
    logits[..., 0] += 4.0
    logits[..., 1] += 10.0 * (fire == 1)
    logits[..., 2] += 2.5 + second_rise * (fire == 2) if second_rise else 10.0 * (fire == 2)
    return logits.astype(np.float32)


def test_columns_of_quantities_are_judged_per_column_not_as_sequences() -> None:
    segments = _segments()
    rows = segments.reshape(-1, 3).astype(np.float64)
    assert 20.0 < win_rise_ratio(rows[: 16 * 30]) < 60.0
    assert infer_output_kinds({"detection": segments}) == {"detection": "dense"}
    noise = np.random.default_rng(1).normal(size=segments.shape) * rows.std(axis=0) * 0.03
    faithful = (segments + noise).astype(np.float32)  # flips offset/duration near-ties: sequences agree on 0.84
    report = measure_drift({"detection": segments}, {"detection": faithful}, {}, DriftBudget())
    assert report.outputs["detection"]["kind"] == "dense" and report.holds, [v.line() for v in report.violations]
    broken = segments.copy()
    broken[..., 1] = segments[..., 1].mean()  # the offset flat-lined: every answer's centre moved
    report = measure_drift({"detection": segments}, {"detection": broken}, {}, DriftBudget())
    assert "channel_correlation_worst" in {violation.metric for violation in report.violations}


def test_class_logits_that_win_by_rising_alike_stay_a_sequence() -> None:
    """A default class and two that fire; a CTC head whose blank never moves (it wins where nothing rises)."""
    assert infer_output_kinds({"frames": _frames()}) == {"frames": "sequence"}
    rng = np.random.default_rng(3)
    ctc = rng.normal(0.0, 1.0, (64 * 40, 40))
    ctc[:, 0] += 5.0
    fired = rng.random(len(ctc)) < 0.3
    ctc[np.flatnonzero(fired), rng.integers(1, 40, fired.sum())] += 9.0
    assert win_rise_ratio(ctc) < 1.5
    assert infer_output_kinds({"ctc": ctc.reshape(64, 40, 40).astype(np.float32)}) == {"ctc": "sequence"}


def test_classes_whose_wins_lie_3_to_10x_apart_are_judged_both_ways() -> None:
    frames = _frames(second_rise=2.5)
    assert 3.0 < win_rise_ratio(frames[:16].reshape(-1, 3).astype(np.float64)) < 10.0
    assert infer_output_kinds({"frames": frames}) == {"frames": "sequence"}
    moved = frames.copy()  # class 1's values where it loses mirrored, kept under the winner: no answer changes
    losing = frames.argmax(axis=-1) != 1
    mirrored = np.minimum(2 * frames[..., 1].mean() - frames[..., 1], frames.max(axis=-1) - 0.5)
    moved[..., 1] = np.where(losing, mirrored, frames[..., 1])
    report = measure_drift({"frames": frames}, {"frames": moved}, {}, DriftBudget())
    record = report.outputs["frames"]
    assert record["kind"] == "sequence" and record["sequence_agreement"] == 1.0
    assert record["columns"]["channel_correlation_worst"] < 0.98 and not report.holds
    line = next(v.line("sequence") for v in report.violations if v.metric == "channel_correlation_worst")
    assert "though its classes win by rises 5.0× apart, as columns of different quantities do" in line, line
    assert "--output-kind frames=dense" in line and "--output-kind frames=token_classification" in line, line
    alike = _frames()
    assert "columns" not in measure_drift({"f": alike}, {"f": alike}, {}, DriftBudget()).outputs["f"]


def test_a_per_position_map_refusal_names_the_position_and_what_the_user_can_do() -> None:
    rng = np.random.default_rng(5)
    maps = rng.normal(0.0, 3.0, (160, 500, 1)).astype(np.float32)
    edge = maps.copy()
    edge[:, 480:] += rng.normal(0.0, 1.5, (160, 20, 1)).astype(np.float32)  # the window's end drifts
    report = measure_drift({"segmentation": maps}, {"segmentation": edge}, {}, DriftBudget())
    assert report.outputs["segmentation"]["kind"] == "dense" and not report.holds
    line = report.violations[0].line("dense")
    assert "judged per position: each of its 500 positions a channel of its own over the 160 samples" in line, line
    assert "the worst at position 4" in line and "of 500;" in line, line
    assert "a --metric (the events found, its decisions at a threshold) is judged beside this, not instead" in line
    assert line.endswith("--keep-failing ships the build with this miss recorded)"), line


def test_a_per_position_map_shifted_at_its_edge_names_the_position_too() -> None:
    """Only the channel error misses (a shift keeps the correlation), as on OpenSpindleNet's compute-only candidate."""
    maps = np.random.default_rng(6).normal(0.0, 3.0, (160, 500, 1)).astype(np.float32)
    shifted = maps.copy()
    shifted[:, 490:] += 0.9
    report = measure_drift({"segmentation": maps}, {"segmentation": shifted}, {}, DriftBudget())
    assert [violation.metric for violation in report.violations] == ["channel_error_worst"]
    assert "judged per position" in report.violations[0].line() and "of 500;" in report.violations[0].line()
