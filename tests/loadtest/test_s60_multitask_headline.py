"""evaluate's headline table scores a multitask output (`--output-kind NAME=multitask`) as optimize judges it: by the
worst task's decision agreement with the reference at --label-threshold, each task's beside it, and with 0/1 labels
per task (samples, tasks) each task's accuracy, their mean and the worst. It read a tagger's cosine without labels,
and refused labels per task as "needs one class id per sample" (session 60). No server: the answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.accuracy_results import AccuracyReport
from loadtest.report_accuracy import accuracy_rows
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

N, TASKS = 1000, 20
KINDS = {"probs": "multitask"}


def _assays() -> tuple[np.ndarray, np.ndarray]:
    """20 tasks' scores, and a build flipping 3 decisions of each on rows of its own (each task keeps 0.997)."""
    probs = np.random.default_rng(60).uniform(0.05, 0.95, (N, TASKS)).astype(np.float32)
    for task in range(TASKS):  # flipped from clear of 0.5 (within 0.02 a flip is a near-tie, left out)
        rows = probs[task * 3 : task * 3 + 3, task]
        rows[np.abs(rows - 0.5) < 0.05] = 0.3
    got = probs.copy()
    for task in range(TASKS):
        got[task * 3 : task * 3 + 3, task] = 1.0 - probs[task * 3 : task * 3 + 3, task]
    return probs, got


def _evaluate(
    monkeypatch: pytest.MonkeyPatch, labels: np.ndarray | None, budget: DriftBudget | None = None
) -> AccuracyReport:
    probs, got = _assays()
    outputs = {"fp32": {"probs": probs}, "int8": {"probs": got}}
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, data, *args, **kwargs: outputs[model])
    x = np.random.default_rng(1).standard_normal((N, 4)).astype(np.float32)
    data = TensorData({"x": x}, labels)
    return evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=budget, output_kinds=KINDS)


def test_the_headline_is_the_worst_task_as_optimize_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    report = _evaluate(monkeypatch, None, DriftBudget())
    ref, got = report.variants
    record = (got.drift or {})["probs"]
    assert got.task_agreement_worst == got.top1_agreement == record["task_agreement_worst"]
    assert got.task_agreements == record["task_agreements"] and got.task_worst == record["task_worst"]
    assert abs(got.task_agreement_worst - 0.997) < 1e-9 and ref.task_agreement_worst == 1.0
    assert got.cosine_min is None and got.accuracy is None and not report.has_labels
    header, rows = accuracy_rows(report)
    assert header[:4] == ["model", "worst task agree", "worst task", "mean task agree"]
    assert not any("cosine" in h for h in header)
    assert rows[1][:4] == ["int8", "0.9970", str(record["task_worst"]), "0.9970"]


def test_without_a_budget_the_worst_task_is_still_the_headline(monkeypatch: pytest.MonkeyPatch) -> None:
    _, got = _evaluate(monkeypatch, None).variants
    assert got.drift is None and got.top1_agreement is not None and abs(got.top1_agreement - 0.997) < 1e-9


def test_labels_per_task_score_each_task(monkeypatch: pytest.MonkeyPatch) -> None:
    probs, _ = _assays()
    labels = (probs >= 0.5).astype(np.int64)
    labels[:100, 0] = -1  # task 0's first rows unlabelled: its 3 flips (rows 0..2) are not scored
    labels[500:700, 5] = 1 - labels[500:700, 5]  # FP32 itself wrong on task 5 there: 0.8
    report = _evaluate(monkeypatch, labels, DriftBudget())
    ref, int8 = report.variants
    assert report.has_labels and int8.violations == []
    expected = np.ones(TASKS) - 0.003
    expected[0], expected[5] = 1.0, 0.8 - 0.003
    assert int8.task_accuracies == pytest.approx(list(expected))
    assert int8.accuracy == pytest.approx(expected.mean()) and int8.task_accuracy_worst == pytest.approx(0.797)
    assert ref.accuracy == pytest.approx((TASKS - 1 + 0.8) / TASKS) and ref.task_accuracy_worst == pytest.approx(0.8)
    assert int8.accuracy_drop_points == pytest.approx((ref.accuracy - int8.accuracy) * 100)
    header, rows = accuracy_rows(report)
    assert header[4:7] == ["task accuracy (mean)", "drop (pts)", "worst task accuracy"]
    assert rows[1][6] == "0.7970"


def test_labels_that_are_not_one_answer_per_task_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    probs, _ = _assays()
    with pytest.raises(QuantserveError, match=r"needs? one 0/1 answer per task, integer, shape \(1000, 20\)"):
        _evaluate(monkeypatch, probs.argmax(axis=1), DriftBudget())
