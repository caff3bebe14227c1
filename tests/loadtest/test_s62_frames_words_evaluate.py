"""evaluate says per position, not per token, where the sequence is float frames a length input counts (session
62): a sleep stager served as FP32 and INT8 read "judged over its real tokens" and "real tokens read as model 'm' was
built" though it takes no token ids. Integer token ids keep "tokens"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.served_graph import told_length_input
from optimizer.drift_budget import DriftBudget
from serving.length_parameter import length_parameter

N, T, STAGES = 32, 10, 5
RNG = np.random.default_rng(621)
LENGTHS = RNG.integers(3, T + 1, N).astype(np.int64)
REAL = np.arange(T)[None, :] < LENGTHS[:, None]
EEG = np.where(REAL[:, :, None], RNG.normal(size=(N, T, 4)), 0.0).astype(np.float32)
IDS = np.where(REAL, RNG.integers(5, 90, (N, T)), 0).astype(np.int64)
LOGITS = RNG.normal(size=(N, T, STAGES)) * 3
FP32 = LOGITS.astype(np.float32)
CONFIG = {"parameters": {k: {"string_value": v} for k, v in length_parameter("n_epochs").items()}}


def test_the_recorded_length_note_says_the_unit() -> None:
    _, notes = told_length_input({"m": CONFIG}, None, {"eeg": EEG, "n_epochs": LENGTHS})
    assert notes == ["real positions read as model 'm' was built (optimize --length-input n_epochs); --length-input "
                     "NAME|none otherwise"]  # fmt: skip
    _, notes = told_length_input({"m": CONFIG}, None, {"input_ids": IDS, "n_epochs": LENGTHS})
    assert notes[0].startswith("real tokens read as model 'm' was built")
    _, notes = told_length_input({"m": CONFIG}, "other", {"eeg": EEG, "n_epochs": LENGTHS, "other": LENGTHS})
    assert notes == ["--length-input other read each row's real positions; model 'm' was built with --length-input "
                     "n_epochs"]  # fmt: skip


@pytest.mark.parametrize(("first", "values", "unit"), [("eeg", EEG, "positions"), ("input_ids", IDS, "tokens")])
def test_evaluates_notes_say_the_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str, values: np.ndarray, unit: str
) -> None:
    data = tmp_path / "eval.npz"
    np.savez(data, **{first: values, "n_epochs": LENGTHS})
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: CONFIG)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *a, **k: {"stages": FP32})
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1",
        ["int8"],
        "fp32",
        data,
        budget=DriftBudget(),
        batch_size=8,
        output_kinds={"stages": "token_classification"},
    )
    notes = report.variants[1].notes
    assert any(note.startswith(f"output 'stages': judged over its real {unit}, positions 0..") for note in notes), notes
