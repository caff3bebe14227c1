"""A trace padded to whole seconds keeps its own gaps' variation: the padding is no gap (session 63, probe F)."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.arrival_trace import ArrivalTrace


def test_the_padding_to_whole_seconds_is_not_counted_as_a_gap() -> None:
    # 1000 exponential gaps (a Poisson trace, CV about 1), a 0.957 s pass padded to 1 s: it read 1.625 ("bursty")
    gaps = np.random.default_rng(0).exponential(0.001, 1000)
    offsets = np.concatenate([[0.0], np.cumsum(gaps[:-1])])
    trace = ArrivalTrace("poisson", offsets, float(gaps.sum()))
    padded = trace.padded_to(np.ceil(trace.period_s) + 0.0)
    assert padded.idle_s > 0.01
    assert padded.gap_cv() == pytest.approx(trace.gap_cv())
    assert padded.summary(speed=1.0)["gap_cv"] == round(float(gaps.std() / gaps.mean()), 3)


def test_even_arrivals_padded_still_read_zero() -> None:
    padded = ArrivalTrace("even", np.arange(4) * 0.2, 0.8).padded_to(1.0)
    assert padded.gap_cv() == pytest.approx(0.0)
