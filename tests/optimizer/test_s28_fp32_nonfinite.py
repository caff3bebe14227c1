"""An output whose FP32 values are themselves NaN or infinite somewhere (a float16 output past 65504) was judged by
nothing: every cosine, correlation and error over an infinite value is NaN, a NaN metric is skipped, and the output
passed whatever INT8 did to its other values. Those values are left out of the figures now, and said."""

from __future__ import annotations

import numpy as np

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget


def _map_with_one_overflow() -> np.ndarray:
    values = np.random.default_rng(0).normal(size=(64, 8, 16)).astype(np.float32)
    values[3, 2, 5] = np.inf  # one value past float16's range, in FP32 too
    return values


def test_an_fp32_overflow_no_longer_hides_a_broken_output() -> None:
    reference = _map_with_one_overflow()
    noise = np.random.default_rng(1).normal(size=reference.shape).astype(np.float32)
    broken = reference.copy()  # faithful but where the two channels holding the overflow (axis 1's, axis 2's) cross
    broken[:, 2, 5] = noise[:, 2, 5] * 3
    broken[3, 2, 5] = np.inf
    report = measure_drift({"y": reference}, {"y": broken}, {"y": "dense"}, DriftBudget())
    assert "channel_correlation_worst" in [v.metric for v in report.violations]
    assert report.outputs["y"]["fp32_nonfinite"] == (
        "output 'y': 1 value NaN or infinite in FP32 itself (1 of them alike in the compared model) left out of its "
        "figures"
    )


def test_a_faithful_output_with_the_same_overflow_holds_and_is_noted() -> None:
    reference = _map_with_one_overflow()
    close = reference + np.random.default_rng(2).normal(0, 1e-3, size=reference.shape).astype(np.float32)
    report = measure_drift({"y": reference}, {"y": close}, {"y": "dense"}, DriftBudget())
    assert not report.violations
    assert report.outputs["y"]["channel_correlation_worst"] > 0.999
    assert kind_notes(report.outputs) == [report.outputs["y"]["fp32_nonfinite"]]


def test_int8_nonfinite_where_fp32_is_finite_stays_a_miss() -> None:
    reference = _map_with_one_overflow()
    candidate = reference.copy()
    candidate[0, 0, 0] = np.nan
    report = measure_drift({"y": reference}, {"y": candidate}, {"y": "dense"}, DriftBudget())
    assert report.violations[0].metric == "nonfinite_values"
    assert report.violations[0].line() == "output 'y': 1 values NaN or infinite where FP32 is finite"


def test_the_drift_table_misses_an_output_with_nonfinite_values() -> None:
    """evaluate's table read "ok" for the output it refused for NaN/inf values (its kind's metric held)."""
    from loadtest.budget_rows import drift_rows

    reference = np.random.default_rng(3).normal(size=(64, 10)).astype(np.float32)
    candidate = reference.copy()
    candidate[:16, 0] = np.inf
    report = measure_drift({"hh": reference}, {"hh": candidate}, {"hh": "classification"}, DriftBudget())
    rows = [row.cells() for row in drift_rows("int8", report.outputs, {"min_top1_agreement": 0.99})]
    assert rows[0] == ["int8", "hh", "classification", "nonfinite_values", "16", "≤ 0", "MISSED"]
