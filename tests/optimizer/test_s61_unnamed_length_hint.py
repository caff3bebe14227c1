"""A length input not named like one is named in a note, never used unasked (session 61): GSSC's sleep stager takes
`eeg` (N, 10, 2560), 0.0 past each row's `n_epochs`; without --length-input optimize judged "over all 400 real
tokens", 146 of them padding past n_epochs, and without labels said nothing at all."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.output_kinds import infer_output_kinds
from optimizer.token_lengths import told_length

N, T, F, C = 40, 10, 6, 5
RNG = np.random.default_rng(612)
N_EPOCHS = RNG.integers(3, T + 1, N).astype(np.int64)
REAL = np.arange(T)[None, :] < N_EPOCHS[:, None]
EEG = np.where(REAL[:, :, None], RNG.normal(size=(N, T, F)), 0.0).astype(np.float32)
LOGITS = RNG.normal(size=(N, T, C)) * 3
STAGES = (LOGITS - np.log(np.exp(LOGITS).sum(axis=2, keepdims=True))).astype(np.float32)
HINT = (
    "input 'n_epochs' holds one integer per row and every position of 'eeg' past it holds one value: if it counts "
    "real frames, --length-input n_epochs judges only them"
)


def _drift(inputs: dict[str, np.ndarray], told: str | None = None, outputs: int = 1) -> DriftReport:
    reference = {f"stages{i}": STAGES for i in range(outputs)}
    with told_length(told):
        kinds = infer_output_kinds(reference, {}, inputs=inputs)
        return measure_drift(reference, dict(reference), kinds, DriftBudget(), None, inputs)


def test_an_unnamed_length_is_named_once() -> None:
    report = _drift({"eeg": EEG, "n_epochs": N_EPOCHS}, outputs=2)
    notes = kind_notes(report.outputs)
    assert notes.count(HINT) == 1, notes
    assert all("tokens_judged" not in record for record in report.outputs.values()), "not acted on"


def test_no_hint_where_a_length_input_is_told_or_found() -> None:
    for told in ("n_epochs", "none"):
        assert HINT not in kind_notes(_drift({"eeg": EEG, "n_epochs": N_EPOCHS}, told).outputs)
    found = kind_notes(_drift({"eeg": EEG, "lengths": N_EPOCHS}).outputs)
    assert not any("holds one integer per row" in note for note in found), found


def test_no_hint_where_nothing_is_padded_past_it() -> None:
    full = RNG.normal(size=(N, T, F)).astype(np.float32)
    notes = kind_notes(_drift({"eeg": full, "n_epochs": N_EPOCHS}).outputs)
    assert not any("holds one integer per row" in note for note in notes), notes


def _stager(path: Path) -> Path:
    """Stage log-probabilities (N, T, C) of `eeg` (N, T, F); `n_epochs` only passed through."""
    weights = RNG.normal(size=(F, C)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["eeg", "w"], ["logits"]),
            helper.make_node("LogSoftmax", ["logits"], ["stage_logprobs"], axis=-1),
            helper.make_node("Identity", ["n_epochs"], ["n_epochs_out"]),
        ],
        "stager",
        [
            helper.make_tensor_value_info("eeg", TensorProto.FLOAT, ["batch", "epochs", F]),
            helper.make_tensor_value_info("n_epochs", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("stage_logprobs", TensorProto.FLOAT, ["batch", "epochs", C]),
            helper.make_tensor_value_info("n_epochs_out", TensorProto.INT64, ["batch"]),
        ],
        [numpy_helper.from_array(weights, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_optimize_names_it_in_its_notes(tmp_path: Path) -> None:
    from quantserve.cli import main

    np.savez(tmp_path / "d.npz", eeg=EEG, n_epochs=N_EPOCHS)
    args = [str(_stager(tmp_path / "s.onnx")), "--calib", str(tmp_path / "d.npz"), "--precision", "fp32"]
    assert main(["optimize", *args, "--out", str(tmp_path / "out"), "--skip-timing"]) == 0
    verification = json.loads((tmp_path / "out" / "manifest.json").read_text())["verification"]
    assert verification["notes"].count(HINT) == 1, verification["notes"]
    assert "tokens_judged" not in verification["outputs"]["stage_logprobs"]
