"""The evidence for a one-value-per-token output's agreement is counted in its real tokens, as a tagger's is
(session 58): deepcut's per-character word starts agreed 0.9974 over 9532 characters of 200 sentences (95 % lower
bound 0.996) and evaluate's verdict read "NOT SHOWN", counted by its 200 rows (≥ 0.982). No server: the served
answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.budget_rows import saved_thin_evidence
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData

N, T, FLIPS = 200, 48, 25


def _sentences(monkeypatch: pytest.MonkeyPatch, rows: int = N, flips: int = FLIPS) -> TensorData:
    """`rows` sentences of T real characters, one sigmoid score each; INT8 moves `flips` of them across 0.5."""
    rng = np.random.default_rng(58)
    fp32 = np.where(rng.random((rows, T)) < 0.3, 0.97, 0.02).astype(np.float32)
    int8 = fp32.copy()
    flat = int8.reshape(-1)
    flat[rng.choice(flat.size, flips, replace=False)] = 0.5
    fp32.reshape(-1)[flat == 0.5] = 0.45
    outputs = {"fp32": {"boundary": fp32}, "int8": {"boundary": int8}}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    chars = rng.integers(1, 178, size=(rows, T)).astype(np.int64)
    return TensorData({"chars": chars, "types": chars % 12, "mask": np.ones((rows, T), np.int64)})


def test_per_token_agreement_is_shown_by_its_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sentences(monkeypatch)
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    int8 = report.variants[1]
    record = (int8.drift or {})["boundary"]
    assert record["kind"] == "multilabel" and record["tokens_judged"] == N * T
    assert record["label_set_agreement"] == pytest.approx(1 - FLIPS / (N * T))
    assert not int8.violations and int8.thin_evidence == []  # 9600 tokens show ≥ 0.99; 200 rows would not
    assert saved_thin_evidence(int8.drift or {}, report.drift_budget, int8.samples) == []  # the verdict's reading


def test_too_few_tokens_read_thin_in_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _sentences(monkeypatch, 4, 1)  # 192 tokens, one flipped: 0.9948 holds 0.99 but cannot show it
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    int8 = report.variants[1]
    assert len(int8.thin_evidence) == 1, int8.thin_evidence
    assert "label-set agreement 0.9948 over 192 held-out real tokens" in int8.thin_evidence[0], int8.thin_evidence
