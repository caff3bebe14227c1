"""evaluate's headline shows a tagger's per-token accuracy where the data's labels are per token (session 56): labels
(N, T) with -100 at pads beside (N, T, C) emissions cannot score (N, C) class scores, but the drift judges them per
labelled token; the headline read "accuracy –" and "(not measured: the data has no labels)" beside the verdict's
accuracy drop 0.01 points on those very labels (Baidu LAC). No server: the served answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.report import ReportInputs, render_markdown
from optimizer.drift_budget import DriftBudget
from quantserve.cli.evaluate_tables import print_table
from quantserve.data import TensorData

N, T, C = 40, 6, 5


def _tagger(monkeypatch: pytest.MonkeyPatch) -> TensorData:
    rng = np.random.default_rng(56)
    lengths = rng.integers(2, T + 1, size=N)
    real = np.arange(T)[None, :] < lengths[:, None]
    ids = np.where(real, rng.integers(1, 50, size=(N, T)), 0).astype(np.int64)  # trailing pad id 0
    fp32 = rng.normal(size=(N, T, C)).astype(np.float32) * 4
    int8 = fp32.copy()
    int8[0, 0] = np.roll(int8[0, 0], 1)  # one real token's tag changed: FP32's label there missed by INT8
    labels = np.where(real, fp32.argmax(axis=2), -100).astype(np.int64)
    labels[1, 0] = (labels[1, 0] + 1) % C  # one label FP32 misses too: its own accuracy below 1
    outputs = {"fp32": {"emissions": fp32}, "int8": {"emissions": int8}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    return TensorData({"token_ids": ids}, labels)


def test_per_token_labels_show_the_drifts_accuracy_in_the_headline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _tagger(monkeypatch)
    labelled = int((data.labels >= 0).sum())  # type: ignore[operator]
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, max_accuracy_drop=1.0, budget=DriftBudget()
    )
    fp32, int8 = report.variants
    record = (int8.drift or {})["emissions"]
    assert record["kind"] == "token_classification" and record["accuracy_drop_points"] > 0, record
    assert record["fp32_accuracy"] == pytest.approx((labelled - 1) / labelled)
    # the headline's figures are the drift's: FP32's own, INT8's and the drop, per labelled token
    assert fp32.accuracy == pytest.approx(record["fp32_accuracy"]) and fp32.accuracy_drop_points == 0.0
    assert int8.accuracy == pytest.approx(record["accuracy"])
    assert int8.accuracy_drop_points == pytest.approx(record["accuracy_drop_points"])

    markdown = render_markdown(ReportInputs([], report))
    assert "no labels" not in markdown, markdown
    assert "| model | accuracy (by token) | drop (pts) |" in markdown, markdown
    assert f"| int8 | {record['accuracy']:.4f} | {record['accuracy_drop_points']:.2f} |" in markdown, markdown
    assert f"| fp32 | {record['fp32_accuracy']:.4f} | 0.00 |" in markdown, markdown
    assert "accuracy drop (measured by token, over the labelled tokens)" in markdown, markdown

    print_table(report)
    said = capsys.readouterr().out
    assert "(accuracy by token, over the labelled tokens)" in " ".join(said.split()), said
    assert f"{record['accuracy']:.4f}" in said and f"{record['fp32_accuracy']:.4f}" in said, said


def test_without_labels_the_headline_says_none_score_the_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """No labels at all: no accuracy column, and the budget line says no accuracy was measured."""
    data = _tagger(monkeypatch)
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", TensorData(data.arrays), max_accuracy_drop=1.0, budget=DriftBudget()
    )
    assert all(v.accuracy is None for v in report.variants) and not report.accuracy_scope()
    markdown = render_markdown(ReportInputs([], report))
    assert "accuracy (by token)" not in markdown
    assert "at most 1 points of accuracy drop (not measured: no labels that score this output)" in markdown
