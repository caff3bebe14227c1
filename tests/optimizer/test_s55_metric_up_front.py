"""A --metric that fails on FP32's own answers is refused before calibration, and one called with labels=None says
so (session 55): a retrieval mAP given a data file without `labels` failed after 81 s of export and calibration with
"IndexError: index 59 is out of bounds …", naming neither the missing array nor the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer import int8_search
from optimizer.user_metric import MetricError, UserMetric
from quantserve.cli import main
from tests.optimizer.test_s55_chance_labels import linear_classifier

METRIC_CODE = """
import numpy as np

def by_class(outputs, labels):  # as a retrieval mAP reads each row's class
    return float(np.asarray(labels).reshape(-1)[59] >= 0)
"""


def _indexes_labels(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    return float(np.asarray(labels).reshape(-1)[59])


def test_a_metric_failing_on_labels_none_is_told_the_file_has_none() -> None:
    metric = UserMetric("sfx:retrieval_map", _indexes_labels, labels_from="held_nolabels.npz")
    with pytest.raises(MetricError) as error:
        metric.score({"logits": np.zeros((4, 3))}, None)
    assert str(error.value) == (
        "--metric 'sfx:retrieval_map' raised IndexError: index 59 is out of bounds for axis 0 with size 1 (it was "
        "called with labels=None: held_nolabels.npz has no 'labels' array)"
    )
    with pytest.raises(MetricError) as error:
        metric.score({"logits": np.zeros((4, 3))}, np.arange(4))
    assert "labels=None" not in str(error.value), "labels were given: nothing to say about them"


def test_optimize_refuses_a_metric_failing_on_fp32_before_calibrating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def searched(*_: object) -> None:
        raise AssertionError("the INT8 search ran before the metric was tried on FP32's answers")

    monkeypatch.setattr(int8_search, "find_exclusions", searched)  # the first calibration-data pass
    monkeypatch.setattr(int8_search._SearchRun, "choose", searched)
    (tmp_path / "s55_metric.py").write_text(METRIC_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = tmp_path / "linear.onnx"
    linear_classifier(model)
    x = np.random.default_rng(1).normal(size=(400, 16)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x[:100])
    np.savez(tmp_path / "held.npz", x=x)  # no labels
    argv = ["optimize", str(model), "--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "held.npz")]
    assert main([*argv, "--out", str(tmp_path / "o"), "--metric", "s55_metric:by_class", "--skip-timing"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "quantserve: error: --metric 's55_metric:by_class' raised IndexError: index 59 is out of bounds for axis 0 "
        f"with size 1 (it was called with labels=None: {tmp_path / 'held.npz'} has no 'labels' array)"
    ]
    assert not (tmp_path / "o").exists()
