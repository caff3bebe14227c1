"""An INT8 deployment taken as the reference beside an FP32 one is said (session 41: `evaluate --models
conv_int8,conv_fp32 --reference conv_int8` passed with no word, an INT8 loss reading as the FP32 model's gain)."""

from __future__ import annotations

from loadtest.accuracy_results import AccuracyReport, VariantAccuracy
from loadtest.run_pairing import accuracy_source_notes


def _variant(model: str, precision: str) -> VariantAccuracy:
    variant = VariantAccuracy(model, 100, 1.0, 0.0, 0.0, 0.95, 0.95, 0.95, 0.95, 0.99, 0.97, 0.0)
    variant.precision, variant.source = precision, "sha256:aa"
    return variant


def test_a_lower_precision_reference_beside_fp32_is_said() -> None:
    variants = [_variant("conv_int8", "int8"), _variant("conv_fp32", "fp32")]
    swapped = AccuracyReport("conv_int8", "held.npz", "logits", True, 1.0, variants)
    [line] = accuracy_source_notes(swapped)
    assert line.startswith("the reference conv_int8 was deployed as int8: the drift and accuracy drop are measured")
    right = AccuracyReport("conv_fp32", "held.npz", "logits", True, 1.0, variants)
    assert accuracy_source_notes(right) == []
    alone = AccuracyReport("conv_int8", "held.npz", "logits", True, 1.0, variants[:1])
    assert accuracy_source_notes(alone) == [], "no FP32 deployment beside it: nothing swapped"
