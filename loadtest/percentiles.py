"""Latency statistics as pure functions over exact per-request latencies (milliseconds)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50.0, 90.0, 95.0, 99.0)


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """The `q`-th percentile (0–100) by linear interpolation between closest ranks; NaN when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    if ordered.size == 0:
        return math.nan
    rank = q / 100.0 * (ordered.size - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


@dataclass
class LatencySummary:
    """Client-observed latency of the successful requests in a measured window."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def from_samples(cls, latencies_ms: Sequence[float] | np.ndarray) -> LatencySummary:
        values = np.asarray(latencies_ms, dtype=np.float64)
        if values.size == 0:
            return cls(0, *([math.nan] * 7))
        p50, p90, p95, p99 = (percentile(values, q) for q in PERCENTILES)
        return cls(
            count=int(values.size),
            mean_ms=float(values.mean()),
            p50_ms=p50,
            p90_ms=p90,
            p95_ms=p95,
            p99_ms=p99,
            min_ms=float(values.min()),
            max_ms=float(values.max()),
        )


def cdf_points(latencies_ms: Sequence[float] | np.ndarray, points: int = 200) -> list[tuple[float, float]]:
    """At most `points` (latency ms, fraction of requests at or below it) pairs of the empirical CDF."""
    ordered = np.sort(np.asarray(latencies_ms, dtype=np.float64))
    if ordered.size == 0:
        return []
    index = np.unique(np.linspace(0, ordered.size - 1, min(points, ordered.size)).round().astype(int))
    return [(float(ordered[i]), float((i + 1) / ordered.size)) for i in index]
