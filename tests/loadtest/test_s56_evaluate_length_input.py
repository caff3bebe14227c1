"""Served evaluate judges a tagger over the real tokens its length input says, as optimize does (session 56): Baidu
LAC's 0.9989 token agreement over all 64 positions (74 % pads, pad id 0 also the space inside sentences) was its
real characters' 0.9958."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from optimizer.drift_budget import DriftBudget

N, T, C = 100, 24, 9


@pytest.mark.parametrize("told", [{}, {"emissions": "token_classification"}])
def test_evaluate_judges_the_length_inputs_real_tokens(told: dict[str, str]) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(3, 10, N).astype(np.int64)
    real = np.arange(T)[None, :] < lengths[:, None]
    ids = rng.integers(0, 40, (N, T))  # 0, the pad id, among the real tokens too
    inputs = {"token_ids": np.where(real, ids, 0).astype(np.int64), "length": lengths}
    emissions = (rng.standard_normal((N, T, C)) * 3).astype(np.float32)
    broken = emissions.copy()
    spots = np.argwhere(real)
    flips = spots[rng.choice(len(spots), 10, replace=False)]
    for n, t in flips:
        broken[n, t] = np.roll(broken[n, t], 1)
    outputs = {"fp32": {"emissions": emissions}, "int8": {"emissions": broken}}
    variants = [VariantAccuracy(model, N) for model in outputs]
    judge_variants(variants, outputs, "fp32", DriftBudget(min_top1_agreement=0.99), told, None, inputs)
    record = variants[1].drift["emissions"] if variants[1].drift else {}
    assert record["token_agreement"] == 1.0 - 10 / real.sum()  # not 1 - 10 / (N * T)
    assert any("positions 0..length-1 of each row (input 'length', inferred" in note for note in variants[1].notes)
