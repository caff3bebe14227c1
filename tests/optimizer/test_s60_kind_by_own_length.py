"""An output tied to its own length input has its kind read over that input's positions (session 60): nagisa's
per-character tag scores (N, 60, 6) beside its per-word ones (N, 43, 24) were read as a detector's head (the
first 4 of 6 tag scores taken as boxes) and judged over all 60 positions, 13567 of 24000 of them padding, while
with the words padded to 60 the same output read per token: one output's kind hung on another's width. And a
--length-input OUTPUT=INPUT pair unused for its output is said, or refused where OUTPUT is no output."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.token_axes import TokenAxes
from optimizer.token_lengths import told_length
from quantserve.errors import QuantserveError

N, CHARS, WORDS, TAGS, POS = 64, 30, 12, 6, 24
RNG = np.random.default_rng(6060)
CHAR_LEN = RNG.integers(4, CHARS + 1, N)
WORD_LEN = np.minimum(RNG.integers(2, WORDS + 1, N), CHAR_LEN)


def _on(lengths: np.ndarray, width: int) -> np.ndarray:
    return np.arange(width)[None, :] < lengths[:, None]


def two_length_data(word_width: int = WORDS) -> dict[str, np.ndarray]:
    """nagisa's inputs in small: character features (N, T, 3) counted by char_len, word ids (N, W) by word_len."""
    chars = np.where(_on(CHAR_LEN, CHARS)[:, :, None], RNG.integers(1, 50, (N, CHARS, 3)), 0)
    words = np.where(_on(WORD_LEN, word_width), RNG.integers(1, 50, (N, word_width)), 0)
    return {"uni": chars, "char_len": CHAR_LEN, "pos_wid": words, "word_len": WORD_LEN}


def tag_scores(width: int, tags: int, wide: int) -> np.ndarray:
    """(N, width, tags) logits: the first `wide` tags spread over ±15, the rest sit far below them within ±1
    (nagisa's 6 segmentation tags, of which 4 are ever answered: their span dwarfs the other two's, as a detector's
    boxes dwarf its scores)."""
    values = RNG.normal(-30.0, 0.5, (N, width, tags))
    values[:, :, :wide] = RNG.normal(0.0, 8.0, (N, width, wide))
    return values.astype(np.float32)


def _outputs(word_width: int = WORDS) -> dict[str, np.ndarray]:
    return {"ws_scores": tag_scores(CHARS, TAGS, 4), "pos_scores": tag_scores(word_width, POS, POS)}


@pytest.mark.parametrize("word_width", [WORDS, CHARS])
def test_the_kind_is_read_over_the_outputs_own_length_input(word_width: int) -> None:
    outputs = _outputs(word_width)
    kinds = infer_output_kinds(outputs, inputs=two_length_data(word_width))
    assert kinds["ws_scores"] == "token_classification", "read per character whatever the words' width"
    assert kinds["pos_scores"] == "token_classification"


def test_a_pair_reads_the_kind_over_its_input() -> None:
    outputs, inputs = _outputs(), two_length_data()
    with told_length("ws_scores=char_len,pos_scores=word_len"):
        kinds = infer_output_kinds(outputs, inputs=inputs)
        report = measure_drift(outputs, outputs, kinds, DriftBudget(), None, inputs)
    assert kinds["ws_scores"] == "token_classification"
    assert report.outputs["ws_scores"]["tokens_judged"] == int(CHAR_LEN.sum())
    assert not any("not used" in note for note in kind_notes(report.outputs)), "both pairs were used"


def test_a_pair_for_no_output_is_refused() -> None:
    with told_length("ws=char_len"), pytest.raises(QuantserveError) as refused:
        infer_output_kinds(_outputs(), inputs=two_length_data())
    assert str(refused.value) == (
        "--length-input ws=char_len: the model has no output 'ws' (outputs: ws_scores, pos_scores)"
    )


@pytest.mark.parametrize(
    ("typed", "axes", "why"),
    [
        ({"ws_scores": "dense"}, None, "output 'ws_scores' is judged as dense, over every position"),
        (
            {},
            TokenAxes(not_tokens=frozenset({"ws_scores"})),
            "the graph says output 'ws_scores''s axis 1 is no token's",
        ),
    ],
)
def test_an_unused_pair_is_said(typed: dict[str, str], axes: TokenAxes | None, why: str) -> None:
    outputs, inputs = _outputs(), two_length_data()
    with told_length("ws_scores=char_len"):
        kinds = infer_output_kinds(outputs, typed, inputs=inputs, axes=axes)
        report = measure_drift(outputs, outputs, kinds, DriftBudget(), None, inputs, axes)
    notes = [note for note in kind_notes(report.outputs) if note.startswith("--length-input ws_scores=char_len")]
    assert notes == [f"--length-input ws_scores=char_len: not used: {why}"]
