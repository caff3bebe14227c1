"""evaluate judges a tagger whose token labels leave tokens unlabelled (-100) on its labelled tokens, as optimize
does (session 57): g2pM's served INT8 read "top-1 agree 0.9735" and missed the 0.99 budget on tokens its task never
reads (0.999 on its labelled polyphones). No server: the served answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from quantserve.cli.evaluate_tables import top1_agreement
from quantserve.data import TensorData

N, T, C = 60, 10, 6


def _tagger(monkeypatch: pytest.MonkeyPatch) -> TensorData:
    """Labels at the first two tokens of each row, -100 elsewhere; INT8 changes a fifth of the others' tags."""
    rng = np.random.default_rng(57)
    ids = rng.integers(1, 500, size=(N, T)).astype(np.int64)
    fp32 = rng.normal(size=(N, T, C)).astype(np.float32) * 4
    int8 = fp32.copy()
    moved = rng.random((N, T)) < 0.2
    moved[:, :2] = False
    int8[moved] = np.roll(int8[moved], 1, axis=-1)
    labels = np.full((N, T), -100, np.int64)
    labels[:, :2] = fp32[:, :2].argmax(axis=2)
    outputs = {"fp32": {"tags": fp32}, "int8": {"tags": int8}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    return TensorData({"token_ids": ids}, labels)


def test_evaluate_judges_the_labelled_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _tagger(monkeypatch)
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, max_accuracy_drop=1.0, budget=DriftBudget()
    )
    int8 = report.variants[1]
    record = (int8.drift or {})["tags"]
    assert not int8.violations, int8.violations
    assert record["tokens_judged"] == 2 * N and record["token_agreement"] == 1.0
    assert top1_agreement(report, int8) == 1.0  # the headline's figure is the judged one
    every = record["token_agreement_real"]
    assert every < 0.9
    note = f"judged on the {2 * N} labelled tokens (labels -100 elsewhere); over all {N * T} real tokens {every:.4f}"
    assert any(note in line for line in int8.notes), int8.notes
