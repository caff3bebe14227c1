"""The user's word on a text model's length input (session 57): an input named like a length (`max_len`) that is a
per-row decode limit or a bucket size, not the count of real tokens, was read as one by its name alone, and drift
judged on the wrong positions with no way to say otherwise. `--length-input NAME` names the length input,
`--length-input none` reads none; the words beside each per-token output say which it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.token_lengths import told_length
from optimizer.token_values import token_basis, token_positions
from quantserve.errors import QuantserveError

N, T, C, VOCAB = 300, 16, 6, 40


def _rows(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Token ids padded with 0 after `n_chars` real ones, 0 inside them too; `max_len`, a decode limit per row
    within 0..T, past the real tokens (read as a length by its name)."""
    rng = np.random.default_rng(seed)
    n_chars = rng.integers(3, 8, N).astype(np.int64)
    real = np.arange(T)[None, :] < n_chars[:, None]
    ids = rng.integers(1, VOCAB, (N, T))
    ids[rng.random((N, T)) < 0.2] = 0
    inputs = {
        "ids": np.where(real, ids, 0).astype(np.int64),
        "max_len": np.minimum(n_chars * 2, T).astype(np.int64),
        "n_chars": n_chars,
    }
    return inputs, real


def test_max_len_is_inferred_a_length_unless_told_otherwise() -> None:
    inputs, real = _rows()
    limits = np.arange(T)[None, :] < inputs["max_len"][:, None]
    assert (token_positions(inputs) == limits).all()  # by its name alone: the wrong positions
    assert token_basis(inputs).endswith("(input 'max_len', inferred: --length-input NAME or none says otherwise)")
    with told_length("n_chars"):
        assert (token_positions(inputs) == real).all()
        assert token_basis(inputs) == "positions 0..length-1 of each row (input 'n_chars', named by --length-input)"
    with told_length("none"):
        assert not (token_positions(inputs) == limits).all()
        assert token_basis(inputs).endswith("(--length-input none)")


def test_a_named_length_comes_before_a_mask() -> None:
    inputs, real = _rows(1)
    mask = np.ones((N, T), dtype=np.int64)  # every position, say a model that masks nothing
    with told_length("n_chars"):
        assert (token_positions({**inputs, "attention_mask": mask}) == real).all()


@pytest.mark.parametrize(
    ("name", "change", "line"),
    [
        ("n_char", {}, "--length-input n_char: no input 'n_char' (inputs: ids, max_len, n_chars)"),
        (
            "n_chars",
            {"n_chars": np.zeros((N, 3), dtype=np.int64)},
            f"--length-input n_chars: input 'n_chars' holds int64 of shape ({N}, 3), not one integer per row of the "
            f"{N} rows (inputs: ids, max_len, n_chars)",
        ),
        (
            "n_chars",
            {"n_chars": np.full(N, 0.5, dtype=np.float32)},
            f"--length-input n_chars: input 'n_chars' holds float32 of shape ({N},), not one integer per row of the "
            f"{N} rows (inputs: ids, max_len, n_chars)",
        ),
        (
            "max_len",
            {"max_len": np.full(N, 64, dtype=np.int64)},
            f"--length-input max_len: input 'max_len' holds 64..64, not within 0..{T} of the token ids' {T} "
            "positions (inputs: ids, max_len, n_chars)",
        ),
    ],
)
def test_a_named_input_that_is_no_length_is_refused_in_one_line(name: str, change: dict, line: str) -> None:
    inputs, _ = _rows(2)
    with told_length(name), pytest.raises(QuantserveError) as refused:
        token_positions({**inputs, **change})
    assert str(refused.value) == line


def test_drift_is_judged_where_the_named_length_says() -> None:
    """The real tokens' tags change in 3 % of them: refused over them; over max_len's positions, twice as many
    (the pads past the real tokens all agree), it held."""
    inputs, real = _rows(3)
    rng = np.random.default_rng(4)
    emissions = (rng.standard_normal((N, T, C)) * 3).astype(np.float32)
    broken = emissions.copy()
    spots = np.argwhere(real)
    for n, t in spots[rng.choice(len(spots), int(0.03 * len(spots)), replace=False)]:
        broken[n, t] = np.roll(broken[n, t], 1)
    reference, candidate = {"emissions": emissions}, {"emissions": broken}
    kinds, budget = {"emissions": "token_classification"}, DriftBudget(min_top1_agreement=0.98)
    assert measure_drift(reference, candidate, kinds, budget, inputs=inputs).holds  # judged with max_len's pads
    with told_length("n_chars"):
        report = measure_drift(reference, candidate, kinds, budget, inputs=inputs)
    assert not report.holds and report.outputs["emissions"]["tokens_judged"] == int(real.sum())
    assert (
        "output 'emissions': judged over its real tokens, positions 0..length-1 of each row (input 'n_chars', "
        f"named by --length-input): {int(real.sum())} of {N * T} positions" in kind_notes(report.outputs)
    )
    with told_length("none"):
        report = measure_drift(reference, candidate, kinds, budget, inputs=inputs)
    assert any(
        note.endswith(
            f"(--length-input none): {int(report.outputs['emissions']['tokens_judged'])} of {N * T} positions"
        )
        for note in kind_notes(report.outputs)
    )


def _tagger(path: Path) -> Path:
    """Emissions (N, T, C) looked up per token id; `max_len` and `n_chars` taken, only passed through."""
    table = np.random.default_rng(7).standard_normal((VOCAB, C)).astype(np.float32) * 3
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["table", "ids"], ["emissions"], axis=0),
            helper.make_node("Add", ["max_len", "n_chars"], ["limits"]),
        ],
        "tagger",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("max_len", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("n_chars", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor_value_info("emissions", TensorProto.FLOAT, ["batch", "tokens", C]),
            helper.make_tensor_value_info("limits", TensorProto.INT64, ["batch"]),
        ],
        [numpy_helper.from_array(table, "table")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_optimize_judges_and_records_the_named_length(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quantserve.cli import main

    inputs, real = _rows(5)
    np.savez(tmp_path / "d.npz", **inputs)
    args = [str(_tagger(tmp_path / "t.onnx")), "--calib", str(tmp_path / "d.npz"), "--precision", "fp32"]
    bad = [*args, "--out", str(tmp_path / "bad"), "--skip-timing", "--length-input", "n_char"]
    assert main(["optimize", *bad]) == 2
    assert "--length-input n_char: no input 'n_char' (inputs: ids, max_len, n_chars)" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["optimize", *args, "--out", str(tmp_path / "out"), "--skip-timing", "--length-input", "n_chars"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["extra"]["length_input"] == "n_chars"
    held = real[-len(real) // 5 :]  # the last 20 % held out
    record = manifest["verification"]["outputs"]["emissions"]
    assert record["tokens_at"] == "positions 0..length-1 of each row (input 'n_chars', named by --length-input)"
    assert record["tokens_judged"] == int(held.sum())
