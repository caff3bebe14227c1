"""optimize judges each per-token output of a model with one length input per padded axis over its own length
input's positions (session 60): nagisa's per-character segmentation was judged over all 60 positions, 57 % of them
padding, beside its per-word tags judged by `word_len`."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.token_axes import TokenAxes

N, CHARS, WORDS, CLASSES = 64, 20, 12, 5
RNG = np.random.default_rng(60)
CHAR_LEN = RNG.integers(4, CHARS + 1, N)
WORD_LEN = np.minimum(RNG.integers(2, WORDS + 1, N), CHAR_LEN)


def _inputs(word_width: int) -> dict[str, np.ndarray]:
    chars = np.where(np.arange(CHARS)[None, :] < CHAR_LEN[:, None], RNG.integers(1, 50, (N, CHARS)), 0)
    on = np.arange(word_width)[None, :] < WORD_LEN[:, None]
    words = np.where(on[:, :, None], RNG.integers(1, 50, (N, word_width, 2)), 0)
    return {"uni": chars, "char_len": CHAR_LEN, "pos_wid": words, "word_len": WORD_LEN}


def _flip_pads(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Every padded position's top class moved: a change the real tokens never see."""
    pads = np.arange(values.shape[1])[None, :] >= lengths[:, None]
    return np.where(pads[:, :, None], np.roll(values, 1, axis=2), values)


NAMES = (("uni", "T"), ("pos_wid", "W"), ("ws_scores", "T"), ("pos_scores", "W"))  # the graph's axis-1 symbols


# the widths differ: each output goes with the length input of its width; one width: the graph's axis names decide
@pytest.mark.parametrize(("word_width", "named"), [(WORDS, False), (CHARS, True)])
def test_each_output_is_judged_over_its_own_length_input(word_width: int, named: bool) -> None:
    inputs, axes = _inputs(word_width), TokenAxes(axis_names=NAMES) if named else None
    ws = RNG.standard_normal((N, CHARS, CLASSES)).astype(np.float32) * 3
    pos = RNG.standard_normal((N, word_width, CLASSES)).astype(np.float32) * 3
    reference = {"ws_scores": ws, "pos_scores": pos}
    candidate = {"ws_scores": _flip_pads(ws, CHAR_LEN), "pos_scores": _flip_pads(pos, WORD_LEN)}
    kinds = dict.fromkeys(reference, "token_classification")
    report = measure_drift(reference, candidate, kinds, DriftBudget(min_top1_agreement=0.99), None, inputs, axes)
    assert report.outputs["ws_scores"]["tokens_judged"] == int(CHAR_LEN.sum())
    assert report.outputs["pos_scores"]["tokens_judged"] == int(WORD_LEN.sum())
    assert not report.violations, "only padding changed"
    assert "input 'char_len'" in report.outputs["ws_scores"]["tokens_at"]
