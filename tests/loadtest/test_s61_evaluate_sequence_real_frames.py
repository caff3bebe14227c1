"""evaluate judges a `sequence` output over its real frames, as optimize does (session 61): GSSC's sleep stager
served as FP32 and INT8 ((N, 10, 5) stage log-probabilities beside `n_epochs`, built with --length-input n_epochs)
printed per-position agreement 0.9962, 1594 of 1600 positions counted over padding, for 0.9943 over the 1054 real
frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget

N, T, STAGES = 32, 10, 5
RNG = np.random.default_rng(611)
LENGTHS = RNG.integers(3, T + 1, N).astype(np.int64)
REAL = np.arange(T)[None, :] < LENGTHS[:, None]
LOGITS = RNG.normal(size=(N, T, STAGES)) * 3
FP32 = (LOGITS - np.log(np.exp(LOGITS).sum(axis=2, keepdims=True))).astype(np.float32)  # log-probabilities
PADDED_ONLY = np.where(REAL[:, :, None], FP32, np.roll(FP32, 1, axis=2))  # INT8 answers otherwise on padding alone


def _evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, int8: np.ndarray) -> evaluator.AccuracyReport:
    data = tmp_path / "eval_nolab.npz"
    eeg = np.where(REAL[:, :, None], RNG.normal(size=(N, T, 4)), 0.0).astype(np.float32)
    np.savez(data, eeg=eeg, n_epochs=LENGTHS)
    served = {"fp32": FP32, "int8": int8}
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *a, **k: {"stage_logprobs": served[model]})
    return evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget(), batch_size=8, length_input="n_epochs"
    )


def test_padding_alone_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _evaluated(tmp_path, monkeypatch, PADDED_ONLY)
    int8 = report.variants[1]
    record = (int8.drift or {})["stage_logprobs"]
    assert record["kind"] == "sequence"
    assert (record["position_agreement"], record["sequence_agreement"]) == (1.0, 1.0)
    assert record["tokens_judged"] == int(LENGTHS.sum())
    assert not int8.violations
    assert any(
        note.startswith("output 'stage_logprobs': judged over its real positions, positions 0..length-1 of each row")
        and f"{int(LENGTHS.sum())} of {N * T} positions" in note
        for note in int8.notes
    ), int8.notes


def test_a_real_frame_changed_counts_over_the_real_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    changed, path = PADDED_ONLY.copy(), FP32[0].argmax(axis=1)
    other = next(c for c in range(1, STAGES) if c not in path[:2])  # nor the blank: row 0's stages decode otherwise
    changed[0, 0, other] = changed[0, 0].max() + 1.0
    record = (_evaluated(tmp_path, monkeypatch, changed).variants[1].drift or {})["stage_logprobs"]
    assert record["position_agreement"] == pytest.approx(1.0 - 1.0 / LENGTHS.sum())
    assert record["sequence_agreement"] == pytest.approx(1.0 - 1.0 / N)
