"""A `sequence` output is judged over its real frames where they are known (session 61): GSSC's sleep stager, (N, 10
epochs, 5) stage log-probabilities beside `n_epochs`, was judged over every frame, padding included; outputs differing
only on the 159 padded frames of 400 read decoded-sequence agreement 0.2 and per-position 0.67 (1.0 over the real
frames), and evaluate printed per-position agreement 0.9962 over 1600 positions for 0.9943 over the 1054 real ones."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift, tokens_notes
from optimizer.drift_budget import DriftBudget
from optimizer.drift_metrics import output_metrics
from optimizer.output_kinds import infer_output_kinds
from optimizer.token_lengths import told_length

N, T, C = 40, 10, 5
RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(N, T, C)) * 3
REFERENCE = (LOGITS - np.log(np.exp(LOGITS).sum(axis=2, keepdims=True))).astype(np.float32)  # log-probabilities
LENGTHS = RNG.integers(3, 11, N)
REAL = np.arange(T)[None, :] < LENGTHS[:, None]
PADDED_ONLY = REFERENCE.copy()
PADDED_ONLY[~REAL] = RNG.normal(size=(int((~REAL).sum()), C)) * 3  # differs from FP32 only past each row's length


def _flipped_real_frame() -> tuple[np.ndarray, int]:
    """PADDED_ONLY with one real frame (row 0, frame 1) answering a class neither it nor its neighbours answer in
    FP32, nor the blank: the row's decoded sequence changes; and that row."""
    candidate, path = PADDED_ONLY.copy(), REFERENCE[0].argmax(axis=1)
    other = next(c for c in range(1, C) if c not in path[:3])
    candidate[0, 1, other] = candidate[0, 1].max() + 1.0
    return candidate, 0


def test_padding_alone_changes_nothing_judged() -> None:
    record = output_metrics("sequence", REFERENCE, PADDED_ONLY, None, REAL)
    assert record["position_agreement"] == 1.0
    assert record["sequence_agreement"] == 1.0
    assert record["located_agreement"] == 1.0
    assert record["tokens_judged"] == int(REAL.sum())


def test_a_real_frame_changed_is_judged() -> None:
    candidate, row = _flipped_real_frame()
    record = output_metrics("sequence", REFERENCE, candidate, None, REAL)
    assert record["position_agreement"] == pytest.approx(1.0 - 1.0 / REAL.sum())
    paths = REFERENCE.argmax(axis=2), candidate.argmax(axis=2)
    real = [tuple(path[row, : LENGTHS[row]]) for path in paths]
    assert real[0] != real[1]
    assert record["sequence_agreement"] == pytest.approx(1.0 - 1.0 / N)


def test_without_positions_every_frame_is_judged_as_before() -> None:
    record = output_metrics("sequence", REFERENCE, PADDED_ONLY)
    paths = REFERENCE.argmax(axis=2), PADDED_ONLY.argmax(axis=2)
    assert record["position_agreement"] == pytest.approx(float(np.mean(paths[0] == paths[1])))
    assert record["sequence_agreement"] < 1.0
    assert "tokens_judged" not in record


def test_best_path_over_its_real_frames() -> None:
    paths = REFERENCE.argmax(axis=2).astype(np.int64), PADDED_ONLY.argmax(axis=2).astype(np.int64)
    record = output_metrics("sequence", *paths, None, REAL)
    assert record["best_path"] is True
    assert (record["position_agreement"], record["sequence_agreement"]) == (1.0, 1.0)
    assert record["values_changed"] == 0
    assert record["tokens_judged"] == int(REAL.sum())
    every = output_metrics("sequence", *paths)
    assert every["sequence_agreement"] < 1.0 and "tokens_judged" not in every


def test_a_mask_s_frames_are_read_in_order() -> None:
    """A mask's True frames, holes and all, decode as one sequence: 1 _ 1 is one symbol 1, as 1 1 1 is."""
    reference = np.array([[1, 2, 1, 0]], dtype=np.int64)
    candidate = np.array([[1, 1, 1, 0]], dtype=np.int64)
    frames = np.array([[True, False, True, True]])
    record = output_metrics("sequence", reference, candidate, None, frames)
    assert (record["sequence_agreement"], record["position_agreement"]) == (1.0, 1.0)


def test_drift_says_which_frames_were_judged() -> None:
    """Through `measure_drift` with the length input named, as optimize and evaluate judge it."""
    eeg = np.where(REAL[:, :, None], RNG.normal(size=(N, T, 8)), 0.0).astype(np.float32)
    inputs = {"eeg": eeg, "n_epochs": LENGTHS.astype(np.int64)}
    with told_length("n_epochs"):
        kinds = infer_output_kinds({"stage_logprobs": REFERENCE}, {}, inputs=inputs)
        report = measure_drift(
            {"stage_logprobs": REFERENCE}, {"stage_logprobs": PADDED_ONLY}, kinds, DriftBudget(), None, inputs
        )
        notes = tokens_notes(report.outputs)
    record = report.outputs["stage_logprobs"]
    assert record["kind"] == "sequence"
    assert record["sequence_agreement"] == 1.0 and report.holds
    assert notes == [
        "output 'stage_logprobs': judged over its real positions, positions 0..length-1 of each row (input 'n_epochs', "
        f"named by --length-input): {int(REAL.sum())} of {N * T} positions"
    ]
