"""A --metric that reads NaN (or an infinity) on a candidate's outputs fails that candidate, and the search goes on;
on FP32's own outputs it stays one user-error line (session 60). An MHC binding predictor's static Q/DQ candidate
answered one constant (the -4.2e6 pad value had set its input's range), the user's Pearson read nan, and optimize
exited 2 with "returned nan; expected a finite number" while FP32 scored 0.917 and the dynamic candidate held."""

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


def _pearson(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.corrcoef(np.asarray(outputs["score"]).reshape(-1), labels)[0, 1])


def test_a_candidate_whose_answers_are_constant_fails_the_metric_with_its_reason() -> None:
    report = DriftReport({})
    add_user_metric(report, UserMetric("mhcmetric:pearson", _pearson), FP32, CONSTANT, LABELS, DriftBudget())
    assert not report.holds
    assert [v.line() for v in report.violations] == [
        "metric 'mhcmetric:pearson': returned nan on this candidate's outputs (they are all one value: a correlation "
        "or a normalized score of them is undefined); it fails the metric"
    ]
    record = report.user_metric or {}
    assert record["relative_drop"] is None and math.isnan(record["int8"]) and record["fp32"] == pytest.approx(1.0)
    assert record["failed"].startswith("mhcmetric:pearson returned nan on this candidate's outputs")
    assert report.margin() < -1.0  # ranks as a candidate that lost the whole score
    assert report.to_dict()["violations"][0]["line"] == report.violations[0].line()


def test_an_infinite_score_on_a_candidate_fails_it_too() -> None:
    def loss(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> dict[str, object]:
        broken = not np.isfinite(outputs["score"]).all()
        return {"value": math.inf if broken else 0.25, "higher_is_better": False}

    report = DriftReport({})
    nan_rows = {"score": FP32["score"].copy()}
    nan_rows["score"][3] = np.nan
    add_user_metric(report, UserMetric("m:loss", loss), FP32, nan_rows, LABELS, DriftBudget())
    assert [v.line() for v in report.violations] == [
        "metric 'm:loss': returned inf on this candidate's outputs (they hold NaN or infinite values); it fails the "
        "metric"
    ]


def test_fp32s_own_nan_stays_one_user_error_line() -> None:
    metric = UserMetric("mhcmetric:pearson", _pearson)
    with pytest.raises(MetricError) as error:
        add_user_metric(DriftReport({}), metric, CONSTANT, FP32, LABELS, DriftBudget())
    assert str(error.value) == (
        "--metric 'mhcmetric:pearson' returned nan; expected a finite number or "
        "{'value': finite number, 'higher_is_better': bool}"
    )


def test_a_finite_candidate_is_judged_by_its_drop_as_before() -> None:
    report = DriftReport({})
    add_user_metric(report, UserMetric("mhcmetric:pearson", _pearson), FP32, FP32, LABELS, DriftBudget())
    assert report.holds and (report.user_metric or {})["relative_drop"] == pytest.approx(0.0)


METRIC_CODE = """
import numpy as np

seen = []

def fp32_only(outputs, labels):  # finite on FP32's answers alone: nan on any INT8 model's
    got = np.asarray(outputs["logits"], dtype=np.float64)
    if not seen:
        seen.append(got)
    return 0.9 if got.shape == seen[0].shape and np.allclose(got, seen[0], atol=1e-6) else float("nan")
"""


def _optimize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *more: str) -> int:
    (tmp_path / "s60_metric.py").write_text(METRIC_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = tmp_path / "linear.onnx"
    linear_classifier(model)
    x = np.random.default_rng(1).normal(size=(400, 16)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x[:100])
    np.savez(tmp_path / "held.npz", x=x, labels=np.zeros(400, np.int64))
    argv = ["optimize", str(model), "--calib", str(tmp_path / "calib.npz"), "--eval", str(tmp_path / "held.npz")]
    return main([*argv, "--out", str(tmp_path / "o"), "--metric", "s60_metric:fp32_only", "--skip-timing", *more])


def test_optimize_refuses_where_every_candidate_reads_nan_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _optimize(tmp_path, monkeypatch)
    err = " ".join(capsys.readouterr().err.split())
    assert "expected a finite number" not in err
    assert code == 1, err
    assert "s60_metric:fp32_only': returned nan on this candidate's outputs; it fails the metric" in err
    assert "--max-metric-drop" not in err, "no drop a flag could allow: the metric read nan"


def test_a_kept_failing_build_shows_the_metric_failed_in_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _optimize(tmp_path, monkeypatch, "--keep-failing") == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "0.9 → failed: s60_metric:fp32_only returned nan on this candidate's outputs" in out
