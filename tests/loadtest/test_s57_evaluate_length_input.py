"""Served evaluate takes the user's word on the length input as optimize does (session 57): `--length-input NAME`
judges per-token drift where NAME's counts say, `--length-input none` reads no input as a length, and a NAME that is
no length input is refused before any request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import evaluate_accuracy, judge_variants
from optimizer.drift_budget import DriftBudget
from optimizer.token_lengths import told_length
from quantserve.errors import QuantserveError

N, T, C = 200, 20, 7


def _served(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """A tagger's rows (`max_len` a decode limit past the real tokens, `n_chars` their count) and its FP32 and INT8
    emissions: 3 % of the real tokens' tags changed, every pad the same."""
    rng = np.random.default_rng(seed)
    n_chars = rng.integers(3, 8, N).astype(np.int64)
    real = np.arange(T)[None, :] < n_chars[:, None]
    ids = np.where(real, rng.integers(0, 30, (N, T)), 0).astype(np.int64)
    inputs = {"token_ids": ids, "max_len": np.minimum(2 * n_chars, T).astype(np.int64), "n_chars": n_chars}
    emissions = (rng.standard_normal((N, T, C)) * 3).astype(np.float32)
    broken = emissions.copy()
    spots = np.argwhere(real)
    for n, t in spots[rng.choice(len(spots), int(0.03 * len(spots)), replace=False)]:
        broken[n, t] = np.roll(broken[n, t], 1)
    return inputs, real, {"fp32": {"emissions": emissions}, "int8": {"emissions": broken}}


def _judged(inputs: dict[str, np.ndarray], outputs: dict[str, dict[str, np.ndarray]]) -> VariantAccuracy:
    variants = [VariantAccuracy(model, N) for model in outputs]
    judge_variants(variants, outputs, "fp32", DriftBudget(min_top1_agreement=0.98), {}, None, inputs)
    return variants[1]


def test_evaluate_judges_where_the_named_length_says() -> None:
    inputs, real, outputs = _served(0)
    assert not _judged(inputs, outputs).violations  # max_len read as the length: its pads dilute the changes
    with told_length("n_chars"):
        variant = _judged(inputs, outputs)
    assert variant.violations and variant.drift and variant.drift["emissions"]["tokens_judged"] == int(real.sum())
    assert any("(input 'n_chars', named by --length-input)" in note for note in variant.notes)
    with told_length("none"):
        variant = _judged(inputs, outputs)
    assert any("(--length-input none)" in note for note in variant.notes)


def test_a_named_input_that_is_no_length_is_refused_before_any_request(tmp_path: Path) -> None:
    inputs, _, _ = _served(1)
    np.savez(tmp_path / "d.npz", **inputs)
    with pytest.raises(QuantserveError) as refused:  # no server at this port: a request would fail otherwise
        evaluate_accuracy("127.0.0.1:9", ["int8"], "fp32", tmp_path / "d.npz", length_input="speaker")
    assert str(refused.value) == "--length-input speaker: no input 'speaker' (inputs: token_ids, max_len, n_chars)"


def test_the_evaluate_command_refuses_a_name_that_is_no_length_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from quantserve.cli import main

    inputs, _, _ = _served(2)
    np.savez(tmp_path / "d.npz", **inputs)
    args = ["--url", "127.0.0.1:9", "--models", "int8", "--reference", "fp32", "--data", str(tmp_path / "d.npz")]
    assert main(["evaluate", *args, "--out", str(tmp_path / "r"), "--length-input", "token_ids"]) == 2
    assert (
        f"--length-input token_ids: input 'token_ids' holds int64 of shape ({N}, {T}), not one integer per row of "
        f"the {N} rows (inputs: token_ids, max_len, n_chars)"
    ) in capsys.readouterr().err
