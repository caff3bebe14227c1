"""evaluate judges a one-score sigmoid head's accuracy drop at --label-threshold exactly as optimize does (session
58): its headline failed the drop optimize took as information, so a build optimize shipped failed evaluate. Both
now budget it on the same drift record, and name it. No server: the served answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.accuracy_results import AccuracyReport
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData

N = 2000


def _head(near_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """As tests/optimizer/test_s58_dense_accuracy_budget.py: INT8 moves the rows just over 0.5 under it."""
    rng = np.random.default_rng(58)
    logits = rng.uniform(0.1, 2.0, N) * rng.choice([-1.0, 1.0], N)
    near = rng.random(N) < near_share
    logits[near] = rng.uniform(0.001, 0.04, int(near.sum()))
    labels = (logits > 0).astype(np.int64)
    noisy = ~near & (rng.random(N) < 0.05)
    labels[noisy] = 1 - labels[noisy]
    fp32 = (1 / (1 + np.exp(-logits))).astype(np.float32)[:, None]
    int8 = (1 / (1 + np.exp(-(logits - 0.05)))).astype(np.float32)[:, None]
    return fp32, int8, labels


def _evaluate(monkeypatch: pytest.MonkeyPatch, near_share: float) -> tuple[AccuracyReport, list[str]]:
    fp32, int8, labels = _head(near_share)
    outputs = {"fp32": {"boundary": fp32}, "int8": {"boundary": int8}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    x = np.random.default_rng(1).standard_normal((N, 8)).astype(np.float32)
    budget = DriftBudget()
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", TensorData({"x": x}, labels), budget=budget, max_accuracy_drop=1.0
    )
    optimize = measure_drift({"boundary": fp32}, {"boundary": int8}, {}, budget, labels)
    return report, [v.line("dense") for v in optimize.violations]


def test_a_drop_beyond_the_budget_fails_evaluate_as_optimize_refuses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    report, refused = _evaluate(monkeypatch, 0.03)
    _, got = report.variants
    assert got.accuracy_drop_points is not None and got.accuracy_drop_points > 1.0
    assert report.over_budget == ["int8"]
    assert got.violations == refused  # the same record judged the same way
    assert len(refused) == 1 and "accuracy drop (points)" in refused[0] and "> budget 1" in refused[0]


def test_a_drop_within_the_budget_passes_both(monkeypatch: pytest.MonkeyPatch) -> None:
    report, refused = _evaluate(monkeypatch, 0.004)
    _, got = report.variants
    assert got.accuracy_drop_points is not None and 0 < got.accuracy_drop_points <= 1.0
    assert report.over_budget == [] and got.violations == [] and refused == []
