"""evaluate's --metric called with labels=None says so, and one that then scores the reference and a variant alike is
not counted (session 59), as optimize's: a macro-F1 returning 0 without labels read "0 → 0", a drop of 0 within
budget, with no word that it never saw a label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from optimizer.user_metric import UserMetric


def _zero_without_labels(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    return 0.0 if labels is None else float((outputs["scores"].argmax(1) == labels).mean())


def _mean_top_score(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    return float(outputs["scores"].max(1).mean())


def _evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, function: object
) -> dict[str, evaluator.VariantAccuracy]:
    data = tmp_path / "held_nolabels.npz"
    np.savez(data, x=np.zeros((8, 4), np.float32))
    scores = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    served = {"fp32": scores, "int8": scores * 0.9}
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: {"scores": served[model]})
    metric = UserMetric("m:f1", function)  # type: ignore[arg-type]
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, metric=metric, budget=DriftBudget(), batch_size=1
    )
    return {variant.model: variant for variant in report.variants}


def test_a_metric_scoring_both_alike_without_labels_is_not_scored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = _evaluated(tmp_path, monkeypatch, _zero_without_labels)
    record = variants["int8"].user_metric or {}
    assert record["value"] == record["reference"] == 0.0
    assert record["relative_drop"] is None and record["scored"] is False
    assert (variants["fp32"].user_metric or {})["scored"] is False
    notes = [note for note in variants["int8"].notes if "labels=None" in note]
    assert notes == [
        f"--metric m:f1 was called with labels=None: {tmp_path / 'held_nolabels.npz'} has no 'labels' array; it "
        "scored FP32 and INT8 alike (0), which shows nothing about INT8: recorded as not scored, the other budgets "
        "judge (a 'labels' array in the held-out file, or --eval with one, lets it score)"
    ]
    assert not any("labels=None" in note for note in variants["fp32"].notes)  # said once, beside the variant


def test_a_metric_needing_no_labels_is_scored_and_said_to_have_had_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = _evaluated(tmp_path, monkeypatch, _mean_top_score)
    record = variants["int8"].user_metric or {}
    assert "scored" not in record and record["relative_drop"] == pytest.approx(0.1)
    assert [note for note in variants["int8"].notes if "labels=None" in note] == [
        f"--metric m:f1 was called with labels=None: {tmp_path / 'held_nolabels.npz'} has no 'labels' array"
    ]
