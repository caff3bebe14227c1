from __future__ import annotations

import math

import numpy as np
import pytest

from loadtest.percentiles import LatencySummary, cdf_points, percentile


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 99.9, 100])
def test_percentile_matches_numpy_linear(q: float) -> None:
    values = np.random.default_rng(0).exponential(3.0, size=1001)
    assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0], 99) == 10.0
    assert percentile([5.0, 1.0, 3.0], 0) == 1.0


def test_percentile_of_nothing_is_nan_and_bad_q_is_rejected() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_latency_summary_orders_its_percentiles() -> None:
    values = np.random.default_rng(1).lognormal(1.0, 0.5, size=5000)
    s = LatencySummary.from_samples(values)
    assert s.count == 5000
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
    assert s.mean_ms == pytest.approx(values.mean())
    assert s.p99_ms == pytest.approx(np.percentile(values, 99))


def test_latency_summary_of_no_requests() -> None:
    s = LatencySummary.from_samples([])
    assert s.count == 0 and math.isnan(s.p50_ms)


def test_cdf_points_are_monotone_and_end_at_one() -> None:
    values = np.random.default_rng(2).normal(10, 2, size=10_000)
    points = cdf_points(values, points=50)
    assert len(points) <= 50
    xs, ys = zip(*points, strict=True)
    assert list(xs) == sorted(xs) and list(ys) == sorted(ys)
    assert ys[-1] == 1.0 and xs[-1] == values.max()
    assert cdf_points([]) == []
