"""An outage's length from the requests' own end times: the last success before it to the first success after."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.timeline import Outage, outages, per_second

START = 2_000.0


def arrivals(t_from: float, t_to: float, rate: float, ok: bool) -> np.ndarray:
    """Rows of (end wall time, latency ms, ok) every 1/rate s over [t_from, t_to) of the window."""
    times = START + t_from + np.arange(round((t_to - t_from) * rate)) / rate
    return np.column_stack([times, np.full(times.size, 3.0), np.full(times.size, 1.0 if ok else 0.0)])


def test_a_server_killed_early_in_one_second_and_back_late_in_another() -> None:
    """The probe: 300 req/s, tritonserver killed 0.03 s into second 5, back 0.84 s into second 8. Per second that is
    (5: 10 ok, 290 failed), (6: 0, 300), (7: 0, 300), (8: 253 failed, 47 ok): 3.8 s down, not the 2.0 s of the two
    whole seconds with no success."""
    sent = np.arange(12 * 300)  # the n-th request ends at n / 300 s
    down = (sent >= 5 * 300 + 10) & (sent < 8 * 300 + 253)
    samples = np.column_stack([START + sent / 300, np.full(sent.size, 3.0), (~down).astype(float)])
    seconds = per_second(samples, START, START + 12)
    assert [(s.ok, s.failed) for s in seconds[5:9]] == [(10, 290), (0, 300), (0, 300), (47, 253)]
    (outage,) = outages(samples, START, START + 12)
    assert outage.start_s == pytest.approx(5 + 9 / 300, abs=0.001) and outage.end_s == pytest.approx(
        8 + 253 / 300, abs=0.001
    )
    assert outage.duration_s == pytest.approx(3.81, abs=0.01)
    assert outage.failed_requests == 290 + 300 + 300 + 253


def test_processes_records_in_any_order_and_a_lone_failure_among_successes() -> None:
    """Every Locust process's rows are concatenated, not sorted; one failed request between successes is no outage."""
    served = arrivals(0, 6, 50, ok=True)
    blip = arrivals(2.01, 2.02, 100, ok=False)
    down = arrivals(6, 7.5, 50, ok=False)
    back = arrivals(7.5, 9, 50, ok=True)
    rng = np.random.default_rng(0)
    samples = np.concatenate([back, served, blip, down])[rng.permutation(len(served) + len(blip) + 150)]
    assert outages(samples, START, START + 9) == [Outage(5.98, 7.5, 75)]


def test_failing_from_the_start_runs_from_the_window_start() -> None:
    samples = np.concatenate([arrivals(0, 1.5, 20, ok=False), arrivals(1.5, 3, 20, ok=True)])
    assert outages(samples, START, START + 3) == [Outage(0.0, 1.5, 30)]
    assert outages(np.zeros((0, 3)), START, START + 3) == []
