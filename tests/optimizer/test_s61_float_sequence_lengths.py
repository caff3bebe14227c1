"""A length input counts a sequence of float features, not only token ids (session 61): sleepecg's sleep stager takes
`features` (N, 960 epochs, 36), -1 past each night's epochs, and `lengths` (N,), and answers per epoch (N, 960, 4).
Read by token ids alone, its INT8 build was judged over all 261 120 epochs, 89 212 of them padded (token agreement
0.9988 for 0.9982 over the real ones), and `--length-input lengths` was refused: "no (N, T) integer token ids input
for it to mark"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.token_axes import token_axes
from optimizer.token_lengths import told_length
from optimizer.token_values import token_basis, token_positions
from quantserve.errors import QuantserveError

N, T, F, C = 120, 24, 5, 4
PAD = -1.0


def sequences(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features (N, T, F) padded with -1 past each row's `lengths`, and the real positions (N, T)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, T - 4, N).astype(np.int64)
    real = np.arange(T)[None, :] < lengths[:, None]
    features = np.where(real[:, :, None], rng.standard_normal((N, T, F)), PAD).astype(np.float32)
    return {"features": features, "lengths": lengths}, real


def _stager(path: Path) -> Path:
    """Per-position softmax (N, T, C) over float features (N, T, F); `lengths` only passed through."""
    weights = np.random.default_rng(3).standard_normal((F, C)).astype(np.float32) * 2
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["stages"], axis=-1),
            helper.make_node("Identity", ["lengths"], ["lengths_out"]),
        ],
        "stager",
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "epochs", F]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("stages", TensorProto.FLOAT, ["batch", "epochs", C]),
            helper.make_tensor_value_info("lengths_out", TensorProto.INT64, ["batch"]),
        ],
        [numpy_helper.from_array(weights, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_length_input_marks_float_sequences() -> None:
    inputs, real = sequences()
    positions = token_positions(inputs)
    assert positions is not None and (positions == real).all()
    assert token_basis(inputs) == (
        "positions 0..length-1 of each row (input 'lengths', inferred: --length-input NAME or none says otherwise)"
    )
    with told_length("lengths"):
        positions = token_positions(inputs)
        assert positions is not None and (positions == real).all()
        assert token_basis(inputs).endswith("(input 'lengths', named by --length-input)")
    with told_length("none"):
        assert token_positions(inputs) is None


def test_no_pad_past_the_lengths_marks_nothing_and_the_named_one_is_refused_saying_what_was_looked_for() -> None:
    inputs, _ = sequences(1)
    noisy = {**inputs, "features": np.random.default_rng(2).standard_normal((N, T, F)).astype(np.float32)}
    assert token_positions(noisy) is None  # no one pad value past the lengths: not a length of these
    with told_length("lengths"), pytest.raises(QuantserveError) as raised:
        token_positions(noisy)
    assert str(raised.value) == (
        "--length-input lengths: no input for it to mark: neither (N, T) integer token ids nor an input whose axis 1 "
        "is padded past the lengths in 'lengths' with one value (inputs: features, lengths); --length-input "
        "OUTPUT=lengths names the output whose axis 1 it counts"
    )
    with told_length("features"), pytest.raises(QuantserveError, match="not one integer per row"):
        token_positions(inputs)


def test_drift_is_judged_over_the_real_positions_only() -> None:
    inputs, real = sequences(4)
    logits = np.random.default_rng(5).standard_normal((N, T, C)).astype(np.float32) * 3
    reference = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    candidate = reference.copy()
    flipped = real & (np.random.default_rng(6).random((N, T)) < 0.1)
    candidate[flipped] = np.roll(candidate[flipped], 1, axis=1)  # another class on ~10 % of the real positions
    kinds = {"stages": "token_classification"}  # as typed, or as per-position labels read it (below)
    record = measure_drift({"stages": reference}, {"stages": candidate}, kinds, DriftBudget(), inputs=inputs)
    record = record.outputs["stages"]
    assert record["tokens_judged"] == int(real.sum())
    changed = (reference.argmax(axis=2) != candidate.argmax(axis=2)) & real
    assert record["token_agreement"] == pytest.approx(1.0 - changed.sum() / real.sum())
    assert record["tokens_at"].startswith("positions 0..length-1 of each row (input 'lengths'")


def test_optimize_accepts_the_plain_length_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quantserve.cli import main

    inputs, real = sequences(7)
    np.savez(tmp_path / "d.npz", **inputs)
    args = [str(_stager(tmp_path / "s.onnx")), "--calib", str(tmp_path / "d.npz"), "--precision", "fp32"]
    args += ["--output-kind", "stages=token_classification"]
    assert main(["optimize", *args, "--out", str(tmp_path / "out"), "--skip-timing", "--length-input", "lengths"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["extra"]["length_input"] == "lengths"
    held = real[-len(real) // 5 :]  # the last 20 % held out
    record = manifest["verification"]["outputs"]["stages"]
    assert record["kind"] == "token_classification"
    assert record["tokens_at"] == "positions 0..length-1 of each row (input 'lengths', named by --length-input)"
    assert record["tokens_judged"] == int(held.sum()) < held.size


def test_the_graph_says_which_2d_outputs_are_per_position_of_a_float_sequence() -> None:
    """A value per epoch (batch, epochs) is per position; a pooled (batch, 24) is not, however wide the data's T."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["features"], ["per_epoch"], axes=[2], keepdims=0),
            helper.make_node("ReduceMean", ["features"], ["mean"], axes=[1], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["pooled"]),
            helper.make_node("Identity", ["lengths"], ["lengths_out"]),
        ],
        "stager",
        [
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "epochs", F]),
            helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("per_epoch", TensorProto.FLOAT, ["batch", "epochs"]),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", T]),
            helper.make_tensor_value_info("lengths_out", TensorProto.INT64, ["batch"]),
        ],
        [numpy_helper.from_array(np.ones((F, T), np.float32), "w")],
    )
    axes = token_axes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert axes.tokens == {"per_epoch"} and axes.not_tokens == {"pooled"}


def test_class_scores_per_frame_read_as_ctc_unless_labels_per_position_say_otherwise() -> None:
    """Frames a length input counts are no tagger's tokens: their class scores read as CTC's, as before the frames were
    known (a frame in a hundred changed may change a line's decode, which per-frame agreement would pass); labels of
    one class per position read them per position (`labelled_sequence_kind`). Read as a tagger's by the frames alone,
    the stager's kind turned with the length input (session 61)."""
    inputs, real = sequences(8)
    logits = np.random.default_rng(9).standard_normal((N, T, C)).astype(np.float32) * 3
    reference = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    assert infer_output_kinds({"stages": reference}, inputs=inputs) == {"stages": "sequence"}
    labels = np.where(real, reference.argmax(axis=2), -100)
    kinds = infer_output_kinds({"stages": reference}, labels=labels, inputs=inputs)
    assert kinds == {"stages": "token_classification"}
    hidden = np.random.default_rng(10).standard_normal((N, T, 64)).astype(np.float32)  # a vector per frame
    assert infer_output_kinds({"hidden": hidden}, inputs=inputs)["hidden"] != "sequence"
