"""A --metric called with labels=None says so, and one that then scores FP32 and INT8 alike is not counted as held
(session 59): ethnicolr's macro-F1 given a calibration file without `labels` (and no --eval) printed
"ethmetric:macro_f1 0 → 0, drop ≤ 0.01", recorded fp32 0 / int8 0 / relative_drop 0 and shipped, with no word that
the function never saw a label."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.drift_budget import DriftBudget
from optimizer.drift_checks import DriftReport
from optimizer.refusal_figures import metric_held_words
from optimizer.user_metric import UserMetric, add_user_metric, metric_notes
from quantserve.cli import main

METRIC_CODE = """
import numpy as np

def macro_f1(outputs, labels):  # as a user's F1 reads labels=None: no true positive anywhere
    if labels is None:
        return 0.0
    return float((np.asarray(outputs["logits"]).argmax(1) == labels).mean())
"""

NOTE = (
    "--metric s59_metric:macro_f1 was called with labels=None: {file} has no 'labels' array (and no --eval was given)"
)


def _zero_without_labels(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    return 0.0 if labels is None else float((outputs["logits"].argmax(1) == labels).mean())


def _mean_top_score(outputs: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    return float(outputs["logits"].max(1).mean())  # needs no labels: its value moves with the outputs


def _linear_classifier(path: Path) -> None:
    """A 16 → 10 Gemm classifier written with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(16, 10)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.zeros(10, np.float32), "b")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _judged(function: object, labels: np.ndarray | None) -> DriftReport:
    fp32 = {"logits": np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]}
    int8 = {"logits": fp32["logits"] * 0.9}
    report = DriftReport({})
    metric = UserMetric("m:f", function, labels_from="calib.npz", no_eval=True)  # type: ignore[arg-type]
    add_user_metric(report, metric, fp32, int8, labels, DriftBudget())
    return report


def test_a_metric_scoring_both_alike_on_labels_none_is_not_scored() -> None:
    report = _judged(_zero_without_labels, None)
    record = report.user_metric or {}
    assert record["fp32"] == record["int8"] == 0.0
    assert record["relative_drop"] is None, "a drop of 0 read as held: the function never saw a label"
    assert record["scored"] is False
    assert report.slacks == [] and report.holds  # no evidence either way: the other budgets judge
    assert metric_held_words(record) == ""  # a refusal does not say it held
    assert metric_notes(record) == [
        "--metric m:f was called with labels=None: calib.npz has no 'labels' array (and no --eval was given); it "
        "scored FP32 and INT8 alike (0), which shows nothing about INT8: recorded as not scored, the other budgets "
        "judge (a 'labels' array in the held-out file, or --eval with one, lets it score)"
    ]


def test_a_metric_that_needs_no_labels_is_scored_and_said_to_have_had_none() -> None:
    record = _judged(_mean_top_score, None).user_metric or {}
    assert "scored" not in record and record["relative_drop"] == pytest.approx(0.1)
    assert metric_notes(record) == [
        "--metric m:f was called with labels=None: calib.npz has no 'labels' array (and no --eval was given)"
    ]
    labelled = _judged(_zero_without_labels, np.array([0, 1, 2, 0])).user_metric or {}
    assert "scored" not in labelled and labelled["relative_drop"] == 0.0  # 1.0 → 1.0 on labels: evidence
    assert metric_notes(labelled) == []


def test_optimize_says_the_metric_had_no_labels_and_does_not_count_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s59_metric.py").write_text(METRIC_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    _linear_classifier(tmp_path / "linear.onnx")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(1).normal(size=(400, 16)).astype(np.float32))  # no labels, no --eval
    out = tmp_path / "o"
    argv = ["optimize", str(tmp_path / "linear.onnx"), "--calib", str(calib), "--precision", "int8"]
    argv += ["--min-top1-agreement", "0.95", "--skip-timing"]  # the tiny model: its drift holds, judged as usual
    assert main([*argv, "--metric", "s59_metric:macro_f1", "--out", str(out)]) == 0
    said = capsys.readouterr()
    err, table = " ".join(said.err.split()), " ".join(said.out.split())
    assert err.count("called with labels=None") == 1
    assert NOTE.format(file=calib) + "; it scored FP32 and INT8 alike (0)" in err
    assert "not scored" in table and "0 → 0" not in table
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    assert verification["holds"] is True  # the drift budgets held: they judge
    metric = verification["metric"]
    assert metric["scored"] is False and metric["relative_drop"] is None
    assert sum("called with labels=None" in note for note in verification["notes"]) == 1
