"""evaluate says whose word the length input was (session 62): with no --length-input of its own, it reads real
positions by the one the build was told (deploy's record), and its per-output note said "(input 'n_epochs', named
by --length-input)", a flag the user never gave evaluate. Now "as the build was told"; evaluate's own flag still
"named by --length-input"; optimize's unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.served_graph import told_length_input
from optimizer.drift_budget import DriftBudget
from optimizer.token_lengths import told_length
from optimizer.token_values import token_basis
from serving.length_parameter import length_parameter

N, T, STAGES = 32, 10, 5
RNG = np.random.default_rng(620)
LENGTHS = RNG.integers(3, T + 1, N).astype(np.int64)
REAL = np.arange(T)[None, :] < LENGTHS[:, None]
EEG = np.where(REAL[:, :, None], RNG.normal(size=(N, T, 4)), 0.0).astype(np.float32)
LOGITS = RNG.normal(size=(N, T, STAGES)) * 3
FP32 = (LOGITS - np.log(np.exp(LOGITS).sum(axis=2, keepdims=True))).astype(np.float32)
CONFIG = {"parameters": {k: {"string_value": v} for k, v in length_parameter("n_epochs").items()}}
BUILT = "positions 0..length-1 of each row (input 'n_epochs', as the build was told)"
FLAG = "positions 0..length-1 of each row (input 'n_epochs', named by --length-input)"


def _notes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, length_input: str | None) -> list[str]:
    data = tmp_path / "eval.npz"
    np.savez(data, eeg=EEG, n_epochs=LENGTHS)
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: CONFIG)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *a, **k: {"stage_logprobs": FP32})
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget(), batch_size=8, length_input=length_input
    )
    return report.variants[1].notes


def test_the_builds_recorded_length_input_is_said_as_the_builds_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = _notes(tmp_path, monkeypatch, None)
    assert any(BUILT in note for note in notes), notes
    assert not any("named by --length-input" in note for note in notes), notes


def test_evaluates_own_flag_is_said_as_the_flags_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notes = _notes(tmp_path, monkeypatch, "n_epochs")
    assert any(FLAG in note for note in notes), notes


def test_the_recorded_name_reads_as_the_builds_and_a_typed_one_as_the_flags() -> None:
    inputs = {"eeg": EEG, "n_epochs": LENGTHS}
    name, _ = told_length_input({"m": CONFIG}, None, inputs)
    with told_length(name):
        assert token_basis(inputs) == BUILT
    name, _ = told_length_input({"m": CONFIG}, "n_epochs", inputs)
    with told_length(name):
        assert token_basis(inputs) == FLAG
