"""evaluate's --metric called with labels=None says the data file has no `labels` array (session 55), as optimize's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest import evaluator
from optimizer.user_metric import MetricError, UserMetric


def _indexes_labels(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    return float(np.asarray(labels).reshape(-1)[59])


def test_evaluate_names_the_file_without_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "held_nolabels.npz"
    np.savez(data, x=np.zeros((8, 4), np.float32))
    scores = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: None)
    monkeypatch.setattr(evaluator, "served_outputs", lambda *args, **kwargs: {"scores": scores})
    metric = UserMetric("sfx:retrieval_map", _indexes_labels)
    with pytest.raises(MetricError) as error:
        evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, metric=metric)
    assert str(error.value).endswith(f"(it was called with labels=None: {data} has no 'labels' array)")
