"""An open loop at a constant rate offers rate × window arrivals, its users' arrivals interleaved (session 36, issue 11
leftover from session 34's probe).

The constant schedule began one gap after the window's start and summed its gaps: each user (one a worker process)
offered one arrival short — 59995 of 60000 at 3000 req/s over 20 s with five — and every user fired at the same
instants, bursts of as many requests as users. Now user i of U arrives at (k + i/U)/rate: `load_pattern.rate_arrivals`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.harness import run_pattern
from loadtest.load_pattern import OpenLoop, rate_arrivals
from loadtest.load_settings import LoadSettings
from serving.server import TritonServer


def _within(span_s: float, rate: float, share: int, shares: int, arrivals: str = "constant") -> np.ndarray:
    offsets = rate_arrivals(rate, arrivals, random.Random(0), share, shares)
    out = []
    for offset in offsets:
        if offset >= span_s:
            return np.array(out)
        out.append(offset)
    raise AssertionError("unreachable")


@pytest.mark.parametrize("users", [1, 2, 5])
def test_a_constant_rate_offers_rate_times_span_evenly_interleaved(users: int) -> None:
    rate, span = 3000.0, 20.0
    shares = [_within(span, rate / users, i, users) for i in range(users)]
    assert [len(s) for s in shares] == [int(rate * span / users)] * users  # before: one short each
    merged = np.sort(np.concatenate(shares))
    assert len(merged) == rate * span
    np.testing.assert_allclose(np.diff(merged), 1.0 / rate, rtol=1e-6)  # even: no two users at one instant
    assert merged[0] == 0.0


def test_a_poisson_schedule_is_random_with_its_mean_rate() -> None:
    offsets = _within(100.0, 50.0, 0, 1, "poisson")
    assert 0.9 * 5000 <= len(offsets) <= 1.1 * 5000
    gaps = np.diff(offsets)
    assert 0.8 <= gaps.std() / gaps.mean() <= 1.2  # exponential gaps: coefficient of variation 1


@pytest.fixture(scope="module")
def served_mlp(
    tmp_path_factory: pytest.TempPathFactory, triton_server_factory: Callable[..., TritonServer]
) -> tuple[TritonServer, Path]:
    repo, data = models.own_mlp_repo(tmp_path_factory.mktemp("offered"))
    return triton_server_factory(repo), data


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "2-workers"])
def test_a_constant_open_loop_offers_every_planned_arrival(
    served_mlp: tuple[TritonServer, Path], workers: int, tmp_path: Path
) -> None:
    server, data = served_mlp
    settings = LoadSettings(server.grpc_url, "mlp", data, OpenLoop(rate=40.0), duration_s=3.0, workers=workers)
    (result,) = run_pattern(settings, tmp_path).results
    planned = 40.0 * 3.0
    print(f"\n{result.label}: offered {result.offered_requests} of {planned:.0f}, window {result.window_s} s")
    assert result.offered_requests == planned  # before: 119 in one process, 118 with two workers
