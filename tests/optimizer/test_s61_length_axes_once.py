"""Which length input counts which axis (`optimizer.length_axes.length_axes`) is read once per data set, not once
per output per step: a model's kinds, its drift and the undecided notes asked it again for each of its outputs, a
pass over every input each time (session 61). A data set with other arrays is read afresh."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import length_axes
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds

N, CHARS, WORDS = 64, 30, 12


def _data(seed: int, words_wide: int = WORDS) -> dict[str, np.ndarray]:
    """Character features counted by char_len, word ids (`words_wide` slots) by word_len (nagisa's two padded axes,
    in small)."""
    rng = np.random.default_rng(seed)
    char_len = rng.integers(4, CHARS + 1, N)
    word_len = np.minimum(rng.integers(2, WORDS + 1, N), char_len)
    chars = np.where((np.arange(CHARS)[None, :] < char_len[:, None])[:, :, None], rng.integers(1, 50, (N, CHARS, 3)), 0)
    words = np.where(np.arange(words_wide)[None, :] < word_len[:, None], rng.integers(1, 50, (N, words_wide)), 0)
    return {"uni": chars, "char_len": char_len, "pos_wid": words, "word_len": word_len}


def _outputs() -> dict[str, np.ndarray]:
    """Three outputs: tags per character, per word, and one sentence class."""
    rng = np.random.default_rng(61)
    shapes = {"ws_scores": (N, CHARS, 6), "pos_scores": (N, WORDS, 24), "sentence": (N, 3)}
    return {name: rng.normal(0.0, 4.0, shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time the length inputs are read from a data set (the start of `length_axes`' work)."""
    calls: list[int] = []
    read = length_axes.length_inputs

    def counted(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(len(arrays))
        return read(arrays)

    monkeypatch.setattr(length_axes, "length_inputs", counted)
    return calls


def test_a_three_output_model_reads_its_data_sets_axes_once(reads: list[int]) -> None:
    inputs, outputs = _data(1), _outputs()
    kinds = infer_output_kinds(outputs, inputs=inputs)
    measure_drift(outputs, outputs, kinds, DriftBudget(), None, inputs)
    measure_drift(outputs, outputs, kinds, DriftBudget(), None, dict(inputs))  # the same arrays, another dict
    assert length_axes.undecided_notes(outputs, inputs, None) == []
    assert len(reads) == 1
    assert kinds["ws_scores"] == kinds["pos_scores"] == "token_classification"


def test_another_data_set_is_read_afresh(reads: list[int]) -> None:
    first, wider = _data(1), _data(2, words_wide=20)
    assert [(a.length, a.width) for a in length_axes.length_axes(first)] == [("char_len", CHARS), ("word_len", WORDS)]
    assert [(a.length, a.width) for a in length_axes.length_axes(wider)] == [("char_len", CHARS), ("word_len", 20)]
    assert [a.width for a in length_axes.length_axes(wider)] == [CHARS, 20]  # the same arrays: not read again
    replaced = {**wider, "pos_wid": first["pos_wid"], "word_len": first["word_len"]}  # the same names: read afresh
    assert [(a.length, a.width) for a in length_axes.length_axes(replaced)] == [
        ("char_len", CHARS),
        ("word_len", WORDS),
    ]
    assert len(reads) == 3
