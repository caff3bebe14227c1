"""evaluate judges `--gate NAME=BY` as optimize does: the served variant's `value` only where the reference's
`confidence` reaches --label-threshold (`loadtest.evaluator.judge_variants` → `optimizer.drift.measure_drift`)."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from optimizer.drift_budget import DriftBudget
from quantserve.errors import QuantserveError

ROWS, FRAMES = 300, 32


def _served() -> dict[str, dict[str, np.ndarray]]:
    """The reference's pitch-like `value` and its `confidence`; the variant's `value` wild where unconfident."""
    x = np.random.default_rng(0).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    fp32 = {"value": 100 * x + 200, "confidence": 1 / (1 + np.exp(-4 * x))}
    return {"m@1": fp32, "m@2": dict(fp32, value=fp32["value"] + 3000 * np.maximum(-x, 0) ** 2)}


def _judged(budget: DriftBudget) -> VariantAccuracy:
    variants = [VariantAccuracy("m@1", ROWS), VariantAccuracy("m@2", ROWS)]
    judge_variants(variants, _served(), "m@1", budget, {}, None)
    return variants[1]


def test_served_value_wrong_where_unconfident_misses_without_a_gate() -> None:
    assert any("output 'value'" in line for line in _judged(DriftBudget()).violations)


def test_served_value_gated_by_its_confidence_holds_and_says_where() -> None:
    variant = _judged(DriftBudget(gates=(("value", "confidence"),)))
    assert not variant.violations
    assert variant.drift is not None
    voiced = int((_served()["m@1"]["confidence"] >= 0.5).sum())
    assert variant.drift["value"]["judged_at"] == f"at the {voiced} positions where FP32's 'confidence' ≥ 0.5"


def test_a_gate_naming_no_served_output_is_refused_naming_both() -> None:
    with pytest.raises(QuantserveError, match="--gate value=voicing: the model has no output 'voicing'"):
        _judged(DriftBudget(gates=(("value", "voicing"),)))
