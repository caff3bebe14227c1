"""evaluate's headline over a float-frames sequence (a sleep stager's epochs, a length input counting them) says its
per-position accuracy is "by position, over the labelled positions", not "by token": the model takes no token
(session 62). No server: the served answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.report import ReportInputs, render_markdown
from optimizer.drift_budget import DriftBudget
from quantserve.cli.evaluate_tables import print_table
from quantserve.data import TensorData

N, T, F, C = 40, 6, 3, 5


def _stager(monkeypatch: pytest.MonkeyPatch) -> TensorData:
    rng = np.random.default_rng(62)
    lengths = rng.integers(2, T + 1, size=N).astype(np.int64)
    real = np.arange(T)[None, :] < lengths[:, None]
    features = np.where(real[..., None], rng.normal(size=(N, T, F)), -1.0).astype(np.float32)  # padded -1
    fp32 = rng.normal(size=(N, T, C)).astype(np.float32) * 4
    int8 = fp32.copy()
    int8[0, 0] = np.roll(int8[0, 0], 1)  # one real epoch's stage changed
    labels = np.where(real, fp32.argmax(axis=2), -100).astype(np.int64)
    outputs = {"fp32": {"stages": fp32}, "int8": {"stages": int8}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    return TensorData({"features": features, "lengths": lengths}, labels)


def test_frames_accuracy_is_by_position(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = _stager(monkeypatch)
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, max_accuracy_drop=1.0, budget=DriftBudget()
    )
    record = (report.variants[1].drift or {})["stages"]
    assert record["tokens_judged"] == int((data.arrays["lengths"]).sum()), record
    assert report.accuracy_scope() == "by position, over the labelled positions"
    markdown = render_markdown(ReportInputs([], report))
    assert "| model | accuracy (by position) | drop (pts) |" in markdown, markdown
    assert "by token" not in markdown, markdown
    print_table(report)
    said = " ".join(capsys.readouterr().out.split())
    assert "(accuracy by position, over the labelled positions)" in said and "by token" not in said, said
