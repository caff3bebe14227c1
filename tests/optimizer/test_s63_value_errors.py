"""A value output's difference from FP32 in its own units: mean, p95 and max of |INT8 − FP32|.

Session 63's probe (face-api's age/gender net): the age head, years per face, was shown only as correlation 0.9942
and error 0.1096 (RMSE/std) beside an unlabelled max_abs_diff 7.143; "age moves 1.15 years on average, 3.08 at p95,
7.14 at worst" was nowhere. The record of a dense, regression or angle output now carries the p95 beside the mean
and max it had (information, not budgeted).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizer.drift_metrics import output_metrics


def _ages() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(63)
    fp32 = rng.uniform(5, 72, 300).astype(np.float32)
    return fp32, (fp32 + rng.normal(0, 1.5, 300)).astype(np.float32)


@pytest.mark.parametrize("kind", ["dense", "regression"])
def test_a_value_outputs_record_carries_mean_p95_and_max_of_its_absolute_difference(kind: str) -> None:
    fp32, int8 = _ages()
    record = output_metrics(kind, fp32, int8)
    diff = np.abs(int8.astype(np.float64) - fp32.astype(np.float64))
    assert record["p95_abs_diff"] == pytest.approx(np.percentile(diff, 95), rel=1e-6)
    assert record["mean_abs_diff"] == pytest.approx(diff.mean(), rel=1e-6)
    assert record["max_abs_diff"] == pytest.approx(diff.max(), rel=1e-6)
    assert record["mean_abs_diff"] < record["p95_abs_diff"] < record["max_abs_diff"]


def test_an_angles_p95_is_of_its_angular_error_across_the_turn() -> None:
    fp32 = np.array([np.pi - 0.01, 0.5, -1.0, 2.0] * 25, dtype=np.float32)
    int8 = fp32 + np.float32(0.02)
    int8[0] = -np.pi + 0.01  # the same angle, 0.02 rad on: not 2π − 0.02
    record = output_metrics("angle", fp32, int8)
    assert record["p95_abs_diff"] == pytest.approx(0.02, abs=1e-5)
    assert record["max_abs_diff"] == pytest.approx(0.02, abs=1e-5)


def test_int8_nan_where_fp32_is_finite_reads_infinite_not_a_small_p95() -> None:
    fp32, int8 = _ages()
    int8[:3] = np.nan
    record = output_metrics("regression", fp32, int8)
    assert math.isinf(record["p95_abs_diff"])


def test_a_score_outputs_record_has_no_p95() -> None:
    rng = np.random.default_rng(1)
    fp32 = rng.random((50, 4)).astype(np.float32)
    assert "p95_abs_diff" not in output_metrics("classification", fp32, fp32 + np.float32(0.01))


def test_a_large_outputs_p95_is_read_over_an_even_sample_close_to_the_exact_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over P95_VALUES values the p95 is read over every k-th value, no copy of the whole difference made (PP-OCRv5's
    logits had made optimize peak 0.85 GB higher, session 63); on a smooth spread it stays within a few percent."""
    from optimizer import value_errors

    monkeypatch.setattr(value_errors, "P95_VALUES", 1000)
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(50, 7, 30)).astype(np.float32)  # 10500 values: every 11th read
    candidate = reference + rng.normal(scale=0.1, size=reference.shape).astype(np.float32)
    got = value_errors.abs_difference_p95(reference, candidate)
    diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64)).reshape(-1)
    assert got == pytest.approx(float(np.percentile(diff[::11], 95)))
    assert got == pytest.approx(float(np.percentile(diff, 95)), rel=0.05)
