"""evaluate's --metric NaN on one served variant's outputs fails that variant with the reason, the others judged:
evaluate had stopped with exit 2 ("returned nan; expected a finite number"), as optimize's search had on MHCnuggets'
constant static-Q/DQ candidate (session 60). The reference's own NaN stays one error line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from optimizer.user_metric import MetricError, UserMetric


def _pearson(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    scores = outputs["score"].ravel()
    return float(np.corrcoef(scores, np.arange(scores.size))[0, 1]) if np.ptp(scores) else float("nan")


def _evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: dict[str, np.ndarray], budget: DriftBudget | None
) -> dict[str, evaluator.VariantAccuracy]:
    data = tmp_path / "held.npz"
    np.savez(data, x=np.zeros((8, 4), np.float32))
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: {"score": served[model]})
    metric = UserMetric("m:pearson", _pearson)
    models = [name for name in served if name != "fp32"]
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", models, "fp32", data, metric=metric, budget=budget, batch_size=1
    )
    return {variant.model: variant for variant in report.variants}


RISING = np.linspace(0.1, 0.9, 8, dtype=np.float32)[:, None]
SERVED = {"fp32": RISING, "flat": np.full((8, 1), 0.5, np.float32), "close": RISING * 0.99}


def test_a_variant_whose_score_is_nan_fails_the_metric_and_the_others_are_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = _evaluated(tmp_path, monkeypatch, SERVED, DriftBudget())
    flat = variants["flat"]
    line = (
        "metric 'm:pearson': returned nan on this variant's outputs (they are all one value: a correlation or a "
        "normalized score of them is undefined); it fails the metric"
    )
    assert line in flat.violations, flat.violations
    assert (flat.user_metric or {})["relative_drop"] is None
    assert not [v for v in variants["close"].violations if "metric" in v]  # judged by its drop, within budget
    assert (variants["close"].user_metric or {})["relative_drop"] == pytest.approx(0.0, abs=1e-6)


def test_without_a_budget_it_is_said_in_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    variants = _evaluated(tmp_path, monkeypatch, SERVED, None)
    assert any(note.endswith("it fails the metric") for note in variants["flat"].notes)


def test_the_references_own_nan_stays_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = {"fp32": SERVED["flat"], "close": RISING}
    with pytest.raises(MetricError, match="returned nan"):
        _evaluated(tmp_path, monkeypatch, served, DriftBudget())
