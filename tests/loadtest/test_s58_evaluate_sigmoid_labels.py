"""evaluate takes the 0/1 labels of a one-score sigmoid head, and the per-token labels (-100 at pads) of a
one-score-per-token output, as optimize does (session 58): deepcut's word-start head (N, 1) was refused with "3796
class id(s) outside 0..0", its sentence model (N, T) with "needs one class id per sample", exit 2, where optimize
took the same files. The labels score each output at --label-threshold (accuracy at 0.5), and reach a --metric.
No server: the served answers are stubbed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from optimizer.user_metric import UserMetric
from quantserve.data import TensorData

N, T = 400, 24


def _stub(monkeypatch: pytest.MonkeyPatch, outputs: dict[str, dict[str, np.ndarray]]) -> None:
    monkeypatch.setattr(
        evaluator,
        "served_outputs",
        lambda url, model, data, batch_size, source, versions=None, request_timeout_s=30.0, state=None: outputs[model],
    )


def _scores(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid scores mostly near 0 or 1, and INT8's: a few near 0.5 moved across it."""
    fp32 = np.where(rng.random(shape) < 0.3, 0.97, 0.02).astype(np.float32)
    near = rng.random(shape) < 0.03
    fp32[near] = 0.51
    int8 = fp32.copy()
    int8[near & (rng.random(shape) < 0.5)] = 0.49
    return fp32, int8


def _at_half(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((scores >= 0.5) == (labels == 1)))


def test_a_binary_head_is_scored_at_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(58)
    fp32, int8 = _scores(rng, (N, 1))
    labels = np.where(rng.random(N) < 0.9, (fp32[:, 0] >= 0.5), rng.random(N) < 0.5).astype(np.int64)
    _stub(monkeypatch, {"fp32": {"boundary": fp32}, "int8": {"boundary": int8}})
    chars = rng.integers(1, 178, size=(N, 21)).astype(np.int64)
    seen: list[Any] = []
    metric = UserMetric("m:f", lambda outputs, truth: seen.append(truth) or 0.5)
    data = TensorData({"chars": chars, "types": chars % 12}, labels)
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget(), metric=metric)
    ref, got = report.variants
    assert ref.accuracy == pytest.approx(_at_half(fp32[:, 0], labels))
    assert got.accuracy == pytest.approx(_at_half(int8[:, 0], labels))
    assert got.accuracy_drop_points == pytest.approx((ref.accuracy - got.accuracy) * 100)
    assert ref.accuracy != got.accuracy  # the flips moved it
    assert all(np.array_equal(truth, labels) for truth in seen) and len(seen) == 2  # the labels reach the metric
    record = (got.drift or {})["boundary"]
    assert "cosine_mean" not in record and got.cosine_mean is None  # a cosine of one value means nothing
    assert not any("labels not scored" in note for note in got.notes), got.notes


def test_per_token_labels_score_the_real_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5858)
    lengths = rng.integers(5, T + 1, size=N)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
    fp32, int8 = _scores(rng, (N, T))
    fp32[mask == 0] = int8[mask == 0] = 0.9  # pads answer anything
    labels = np.where(rng.random((N, T)) < 0.95, fp32 >= 0.5, rng.random((N, T)) < 0.5).astype(np.int64)
    labels[mask == 0] = -100
    _stub(monkeypatch, {"fp32": {"boundary": fp32}, "int8": {"boundary": int8}})
    chars = np.where(mask == 1, rng.integers(1, 178, size=(N, T)), 0).astype(np.int64)
    data = TensorData({"chars": chars, "types": chars % 12, "mask": mask}, labels)
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    ref, got = report.variants
    real = mask == 1
    assert ref.accuracy == pytest.approx(_at_half(fp32[real], labels[real]))
    assert got.accuracy == pytest.approx(_at_half(int8[real], labels[real]))
    assert report.accuracy_scope() == "by token, over the labelled tokens"
    assert (got.drift or {})["boundary"]["tokens_judged"] == int(real.sum())
