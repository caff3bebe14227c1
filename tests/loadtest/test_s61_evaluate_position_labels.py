"""evaluate judges a per-position softmax with labels of its positions as optimize does, per position (session 61):
sleepecg's sleep stager, served as FP32 and INT8 ((N, 960, 4) stages per epoch) and evaluated on data labelled a
stage per epoch (-100 on padded epochs), was read as CTC again and printed accuracy "–" and top-1 agree "–"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget

N, T, STAGES = 32, 30, 4
RNG = np.random.default_rng(610)
LENGTHS = RNG.integers(T // 3, T + 1, N)
PADDED = np.arange(T)[None, :] >= LENGTHS[:, None]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=2, keepdims=True))
    return (shifted / shifted.sum(axis=2, keepdims=True)).astype(np.float32)


LOGITS = RNG.normal(0, 3.0, (N, T, STAGES))
FP32 = _softmax(LOGITS)
FLIPPED = (np.arange(T)[None, :] % 10 == 0) & ~PADDED  # every tenth real epoch answers another stage in INT8
INT8 = _softmax(np.where(FLIPPED[:, :, None], np.roll(LOGITS, 1, axis=2), LOGITS))
LABELS = np.where(PADDED, -100, FP32.argmax(axis=2)).astype(np.int64)


def _evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, labels: np.ndarray | None) -> evaluator.AccuracyReport:
    data = tmp_path / "eval.npz"
    extra = {} if labels is None else {"labels": labels}
    np.savez(data, features=np.zeros((N, T, 2), np.float32), **extra)
    served = {"fp32": FP32, "int8": INT8}
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: {"stages": served[model]})
    return evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget(), batch_size=8)


def test_labels_of_its_positions_judge_it_per_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _evaluated(tmp_path, monkeypatch, LABELS)
    fp32, int8 = report.variants
    record = (int8.drift or {})["stages"]
    assert record["kind"] == "token_classification", "not CTC-style sequences"
    assert record["tokens_judged"] == int(LENGTHS.sum()), "padded epochs (-100) not judged"
    assert record["token_agreement"] == pytest.approx(1.0 - FLIPPED.sum() / LENGTHS.sum())
    assert fp32.accuracy == 1.0  # the accuracy column, over the labelled epochs
    assert int8.accuracy == pytest.approx(1.0 - FLIPPED.sum() / LENGTHS.sum())
    assert any(
        note.startswith("output 'stages': read as per-position classification (token_classification)")
        and "because the labels are a class id in [0, 4) per position" in note
        for note in int8.notes
    ), int8.notes


def test_without_labels_it_stays_a_sequence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = _evaluated(tmp_path, monkeypatch, None)
    assert (report.variants[1].drift or {})["stages"]["kind"] == "sequence"
