"""evaluate reads a two-head tagger's heads together on its labelled tokens where token labels leave tokens
unlabelled (-100), as optimize does (session 58): the joint check judged every real token after each head had moved
to its labelled ones. No server: the served answers are stubbed."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from quantserve.data import TensorData

N, T = 60, 10


def _moved(logits: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = logits.copy()
    out[where] = np.roll(out[where], 1, axis=-1)
    return out


def _parser(monkeypatch: pytest.MonkeyPatch) -> TensorData:
    """Labels at the first two tokens of each row, -100 elsewhere; INT8 changes each head's answer at a tenth of the
    other tokens, other ones for each head."""
    rng = np.random.default_rng(58)
    ids = rng.integers(1, 500, size=(N, T)).astype(np.int64)
    fp32 = {"heads": rng.normal(size=(N, T, T)).astype(np.float32) * 4}
    fp32["rels"] = rng.normal(size=(N, T, 6)).astype(np.float32) * 4
    draw = rng.random((N, T))
    draw[:, :2] = 1.0
    int8 = {"heads": _moved(fp32["heads"], draw < 0.1), "rels": _moved(fp32["rels"], (draw >= 0.1) & (draw < 0.2))}
    labels = np.full((N, T), -100, np.int64)
    labels[:, :2] = fp32["rels"][:, :2].argmax(axis=2)
    outputs = {"fp32": fp32, "int8": int8}
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )
    return TensorData({"token_ids": ids}, labels)


def test_evaluate_reads_the_heads_together_on_the_labelled_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _parser(monkeypatch)
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, max_accuracy_drop=1.0, budget=DriftBudget()
    )
    int8 = report.variants[1]
    joint = (int8.drift or {})["heads+rels"]
    assert not int8.violations, int8.violations
    assert joint["tokens_judged"] == 2 * N and joint["token_agreement"] == 1.0
    every = joint["token_agreement_real"]
    assert every < 0.9
    note = (
        f"outputs 'heads+rels': every output's top-1 at once judged on the {2 * N} labelled tokens (labels -100 "
        f"elsewhere); over all {N * T} real tokens {every:.4f}"
    )
    assert note in int8.notes, int8.notes
