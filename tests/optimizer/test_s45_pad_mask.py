"""A mask input whose 1s are the pads (PyTorch's key_padding_mask convention) is not an attention mask (session 45):
a NER tagger's `pad_mask` (True at pads) was read as 1 = real token, so its pad positions alone were judged (token
agreement 1.0, max abs diff 0), while over its real tokens INT8 agreed 0.9968 and moved logits up to 1.43."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.token_values import token_positions

N, T, C = 400, 20, 8


def _padded(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(3, 13, N)
    real = np.arange(T)[None, :] < lengths[:, None]
    return np.where(real, rng.integers(5, 3000, (N, T)), 0).astype(np.int64), real


def test_a_padding_mask_marks_the_pads_not_the_tokens() -> None:
    ids, real = _padded(np.random.default_rng(0))
    for name in ("pad_mask", "src_key_padding_mask", "mask"):  # the ids show which side is the pads, whatever the name
        positions = token_positions({"input_ids": ids, name: ~real})
        assert positions is not None and (positions == real).all(), name


def test_an_attention_mask_still_marks_the_tokens() -> None:
    ids, real = _padded(np.random.default_rng(1))
    for mask in (real.astype(np.int64), real):
        positions = token_positions({"attention_mask": mask, "input_ids": ids})  # the mask first: ids found beside it
        assert positions is not None and (positions == real).all()


def test_without_pads_in_the_data_the_name_decides() -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 3000, (N, T)).astype(np.int64)
    none = np.zeros((N, T), dtype=bool)
    positions = token_positions({"input_ids": ids, "key_padding_mask": none})
    assert positions is not None and positions.all()  # no position is a pad
    positions = token_positions({"input_ids": ids, "attention_mask": np.ones((N, T), np.int64)})
    assert positions is not None and positions.all()


def test_a_tagger_with_a_pad_mask_is_judged_over_its_real_tokens() -> None:
    """2 % of the real tokens' tags changed, the pads' untouched: judged over the pads alone it read 1.0."""
    rng = np.random.default_rng(3)
    ids, real = _padded(rng)
    logits = rng.standard_normal((N, T, C)).astype(np.float32) * 3
    logits[~real] = 0.0
    logits[~real, 0] = 9.0
    broken = logits.copy()
    spots = np.argwhere(real)
    for n, t in spots[rng.choice(len(spots), int(0.02 * len(spots)) + 1, replace=False)]:
        broken[n, t] = np.roll(broken[n, t], 1)
    inputs = {"input_ids": ids, "pad_mask": ~real}
    kinds = infer_output_kinds({"tags": logits}, inputs=inputs)
    assert kinds == {"tags": "token_classification"}
    report = measure_drift({"tags": logits}, {"tags": broken}, kinds, DriftBudget(), inputs=inputs)
    assert report.outputs["tags"]["token_agreement"] < 0.99
    assert not report.holds
