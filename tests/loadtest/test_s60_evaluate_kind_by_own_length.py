"""evaluate reads a per-character output's kind over its own length input's positions, as optimize does (session
60): nagisa's (N, 60, 6) tag scores beside its (N, 43, 24) word tags were judged as a detector's head over all 60
positions, 13567 of 24000 padded, and --length-input ws_scores=char_len changed nothing, without a word."""

from __future__ import annotations

import numpy as np

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from optimizer.drift_budget import DriftBudget
from optimizer.token_lengths import told_length

N, CHARS, WORDS = 48, 30, 12
RNG = np.random.default_rng(60)
CHAR_LEN = RNG.integers(4, CHARS + 1, N)
WORD_LEN = np.minimum(RNG.integers(2, WORDS + 1, N), CHAR_LEN)


def _data() -> dict[str, np.ndarray]:
    chars = np.where((np.arange(CHARS)[None, :] < CHAR_LEN[:, None])[:, :, None], RNG.integers(1, 50, (N, CHARS, 3)), 0)
    words = np.where(np.arange(WORDS)[None, :] < WORD_LEN[:, None], RNG.integers(1, 50, (N, WORDS)), 0)
    return {"uni": chars, "char_len": CHAR_LEN, "pos_wid": words, "word_len": WORD_LEN}


def _scores(width: int, tags: int, wide: int) -> np.ndarray:
    """Logits whose first `wide` tags spread over ±15 far above the rest (nagisa's 4 of 6 tags ever answered)."""
    values = RNG.normal(-30.0, 0.5, (N, width, tags))
    values[:, :, :wide] = RNG.normal(0.0, 8.0, (N, width, wide))
    return values.astype(np.float32)


def _judged(kinds: dict[str, str], told: str | None) -> VariantAccuracy:
    fp32 = {"ws_scores": _scores(CHARS, 6, 4), "pos_scores": _scores(WORDS, 24, 24)}
    outputs = {"fp32": fp32, "int8": {name: values.copy() for name, values in fp32.items()}}
    variants = [VariantAccuracy(name, N) for name in outputs]
    with told_length(told):
        judge_variants(variants, outputs, "fp32", DriftBudget(), kinds, None, _data())
    return variants[1]


def test_evaluate_reads_the_kind_over_the_outputs_own_length_input() -> None:
    drift = _judged({}, None).drift or {}
    assert drift["ws_scores"]["kind"] == "token_classification", "not a detector's head"
    assert drift["ws_scores"]["tokens_judged"] == int(CHAR_LEN.sum())


def test_evaluate_says_a_pair_its_output_is_not_judged_by() -> None:
    variant = _judged({"ws_scores": "dense"}, "ws_scores=char_len,pos_scores=word_len")
    assert (
        "--length-input ws_scores=char_len: not used: output 'ws_scores' is judged as dense, over every position"
        in (variant.notes)
    )
    assert not any(note.startswith("--length-input pos_scores") for note in variant.notes), "that pair was used"
