"""evaluate's --metric that RAISES on one served variant's outputs fails that variant with the reason, the others
judged, as a NaN score does (session 60): a ValueError on the one variant whose answers were constant had stopped
evaluate with exit 2 (session 61). A raise on the reference's own outputs stays one error line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from optimizer.user_metric import MetricError, UserMetric


def _spearman(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    scores = outputs["score"].ravel()
    if not np.ptp(scores):
        raise ValueError("the input array is constant")
    return float(np.corrcoef(scores, np.arange(scores.size))[0, 1])


def _evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, np.ndarray], budget: DriftBudget | None
) -> dict[str, evaluator.VariantAccuracy]:
    data = tmp_path / "held.npz"
    np.savez(data, x=np.zeros((8, 4), np.float32))
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: {"score": served[model]})
    models = [name for name in served if name != "fp32"]
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", models, "fp32", data, metric=UserMetric("m:spearman", _spearman), budget=budget, batch_size=1
    )
    return {variant.model: variant for variant in report.variants}


RISING = np.linspace(0.1, 0.9, 8, dtype=np.float32)[:, None]
SERVED = {"fp32": RISING, "flat": np.full((8, 1), 0.5, np.float32), "close": RISING * 0.99}
LINE = (
    "metric 'm:spearman': raised ValueError: the input array is constant on this variant's outputs (they are all "
    "one value: a correlation or a normalized score of them is undefined); it fails the metric"
)


def test_a_variant_the_metric_raises_on_fails_it_and_the_others_are_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = _evaluated(tmp_path, monkeypatch, SERVED, DriftBudget())
    flat = variants["flat"]
    assert LINE in flat.violations, flat.violations
    record = flat.user_metric or {}
    assert record["relative_drop"] is None and record["failed"] == LINE.removesuffix("; it fails the metric")
    assert not [v for v in variants["close"].violations if "metric" in v]  # judged by its drop, within budget
    assert (variants["close"].user_metric or {})["relative_drop"] == pytest.approx(0.0, abs=1e-6)


def test_without_a_budget_it_is_said_in_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    variants = _evaluated(tmp_path, monkeypatch, SERVED, None)
    assert LINE in variants["flat"].notes and not variants["flat"].violations


def test_the_references_own_raise_stays_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = {"fp32": SERVED["flat"], "close": RISING}
    with pytest.raises(MetricError) as error:
        _evaluated(tmp_path, monkeypatch, served, DriftBudget())
    assert str(error.value) == (
        "--metric 'm:spearman' raised ValueError: the input array is constant (it was called with labels=None: "
        f"{tmp_path / 'held.npz'} has no 'labels' array)"
    )
