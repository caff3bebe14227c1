"""evaluate rules on labels as optimize does (session 55): where the reference's own accuracy against them is at or
below chance for the scored output's classes, they are not its truth: no accuracy drop is set or budgeted, and the
variant carries optimize's note in its words."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData
from quantserve.metrics import chance_labels_note


def _served(monkeypatch: pytest.MonkeyPatch, labels: np.ndarray) -> TensorData:
    answers = np.arange(100) % 10
    fp32 = np.eye(10, dtype=np.float32)[answers] * 5
    int8 = fp32.copy()
    int8[0] = np.roll(int8[0], 1)  # row 0's answer changed: a right one where the labels are FP32's
    outputs = {"fp32": {"scores": fp32}, "int8": {"scores": int8}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    return TensorData({"x": np.zeros((100, 4), np.float32)}, labels)


def test_labels_at_chance_are_not_budgeted_by_evaluate(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = (np.arange(100) + 1) % 10
    labels[::10] = 0  # 10 of 100 right, row 0 among them: chance for 10 classes
    data = _served(monkeypatch, labels)
    budget = DriftBudget(min_top1_agreement=0.9)
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, max_accuracy_drop=0.5, budget=budget)
    int8 = next(v for v in report.variants if v.model == "int8")
    assert int8.accuracy == pytest.approx(0.09) and int8.accuracy_drop_points is None
    assert not report.over_budget and not int8.violations
    assert int8.notes.count(chance_labels_note("scores", 0.1, 10, 100)) == 1, int8.notes


def test_labels_above_chance_are_budgeted_by_evaluate(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _served(monkeypatch, np.arange(100) % 10)
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, max_accuracy_drop=0.5)
    int8 = next(v for v in report.variants if v.model == "int8")
    assert int8.accuracy_drop_points == pytest.approx(1.0) and report.over_budget == ["int8"]
    assert not any("chance" in note for note in int8.notes)
