"""A --metric that RAISES on a candidate's outputs (sklearn's ValueError on a constant or NaN-holding answer, an
IndexError on an all-one-class one) fails that candidate with the reason, and the search goes on, as a NaN score
does (session 60); a raise on FP32's own outputs stays one user-error line. Optimize had exited 2 on the first
candidate the metric could not score, while FP32 scored fine and another candidate held (session 61)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.user_metric import MetricError, UserMetric, add_user_metric
from quantserve.cli import main
from tests.optimizer.test_s55_chance_labels import linear_classifier

LABELS = np.linspace(1.0, 10.0, 8)
FP32 = {"score": np.linspace(0.1, 0.9, 8).reshape(8, 1).astype(np.float32)}
CONSTANT = {"score": np.full((8, 1), 0.1407, np.float32)}


def _spearman(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    scores = np.asarray(outputs["score"]).reshape(-1)
    if not np.ptp(scores):
        raise ValueError("the input array is constant")
    return float(np.corrcoef(np.argsort(np.argsort(scores)), labels)[0, 1])


def _failed_lines(metric: UserMetric, candidate: dict[str, np.ndarray]) -> tuple[list[str], DriftReport]:
    report = DriftReport({})
    add_user_metric(report, metric, FP32, candidate, LABELS, DriftBudget())
    return [v.line() for v in report.violations], report


def test_a_candidate_the_metric_raises_on_fails_the_metric_with_its_reason() -> None:
    lines, report = _failed_lines(UserMetric("m:spearman", _spearman), CONSTANT)
    assert lines == [
        "metric 'm:spearman': raised ValueError: the input array is constant on this candidate's outputs (they are "
        "all one value: a correlation or a normalized score of them is undefined); it fails the metric"
    ]
    record = report.user_metric or {}
    assert record["relative_drop"] is None and math.isnan(record["int8"]) and record["fp32"] == pytest.approx(1.0)
    assert record["failed"].startswith("m:spearman raised ValueError: the input array is constant on this candidate")
    assert not report.holds and report.margin() < -1.0  # ranks as a candidate that lost the whole score
    assert report.to_dict()["violations"][0]["line"] == lines[0]


def test_a_raise_on_nan_holding_outputs_says_they_hold_nan() -> None:
    def strict(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
        if not np.isfinite(outputs["score"]).all():
            raise ValueError("Input contains NaN.")
        return 0.5

    nan_rows = {"score": FP32["score"].copy()}
    nan_rows["score"][3] = np.nan
    lines, _ = _failed_lines(UserMetric("m:strict", strict), nan_rows)
    assert lines == [
        "metric 'm:strict': raised ValueError: Input contains NaN. on this candidate's outputs (they hold NaN or "
        "infinite values); it fails the metric"
    ]


def test_sys_exit_on_a_candidate_fails_it_as_an_exception_does() -> None:
    def one_class(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
        if not np.ptp(outputs["score"]):
            raise SystemExit("one class only")
        return 0.5

    lines, _ = _failed_lines(UserMetric("m:auc", one_class), CONSTANT)
    assert lines[0].startswith("metric 'm:auc': raised SystemExit: one class only on this candidate's outputs (")


def test_a_multiline_message_is_said_on_one_line() -> None:
    def wordy(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
        if not np.ptp(outputs["score"]):
            raise IndexError("index 1 is out of bounds\n  for axis 1 with size 1")
        return 0.5

    lines, _ = _failed_lines(UserMetric("m:auc", wordy), CONSTANT)
    assert lines[0].startswith("metric 'm:auc': raised IndexError: index 1 is out of bounds for axis 1 with size 1 on")


def test_ctrl_c_in_the_metric_on_a_candidate_still_interrupts() -> None:
    def interrupted(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
        if not np.ptp(outputs["score"]):
            raise KeyboardInterrupt
        return 0.5

    with pytest.raises(KeyboardInterrupt):
        _failed_lines(UserMetric("m:slow", interrupted), CONSTANT)


def test_fp32s_own_raise_stays_one_user_error_line() -> None:
    with pytest.raises(MetricError) as error:
        add_user_metric(DriftReport({}), UserMetric("m:spearman", _spearman), CONSTANT, FP32, LABELS, DriftBudget())
    assert str(error.value) == "--metric 'm:spearman' raised ValueError: the input array is constant"


METRIC_CODE = """
import numpy as np

seen = []

def fp32_only(outputs, labels):  # scores FP32's answers alone: raises on any INT8 model's
    got = np.asarray(outputs["logits"], dtype=np.float64)
    if not seen:
        seen.append(got)
    if got.shape != seen[0].shape or not np.allclose(got, seen[0], atol=1e-6):
        raise ValueError("y_pred holds a single class")
    return 0.9
"""


def _optimize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *more: str) -> int:
    (tmp_path / "s61_metric.py").write_text(METRIC_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = tmp_path / "linear.onnx"
    linear_classifier(model)
    x = np.random.default_rng(1).normal(size=(400, 16)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x[:100])
    np.savez(tmp_path / "held.npz", x=x, labels=np.zeros(400, np.int64))
    argv = ["optimize", str(model), "--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "held.npz")]
    return main([*argv, "--out", str(tmp_path / "o"), "--metric", "s61_metric:fp32_only", "--skip-timing", *more])


def test_optimize_refuses_where_the_metric_raises_on_every_candidate_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _optimize(tmp_path, monkeypatch)
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1, err  # a refusal after the search, not exit 2 at the first candidate
    assert (
        "s61_metric:fp32_only': raised ValueError: y_pred holds a single class on this candidate's outputs; it fails "
        "the metric"
    ) in err
    assert "--max-metric-drop" not in err, "no drop a flag could allow: the metric raised"


def test_a_kept_failing_build_shows_the_metric_failed_in_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _optimize(tmp_path, monkeypatch, "--keep-failing") == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "0.9 → failed: s61_metric:fp32_only raised ValueError: y_pred holds a single class on this" in out
