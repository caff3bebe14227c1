"""Labels FP32 itself scores at or below chance are not the output's truth (session 55): 12 sound-class ids given for a
--metric scored a 78-class head at 0.0035 (chance 0.0128) and passed "accuracy_drop_points 0 (budget 1)" without a
word. Its accuracy drop is not budgeted there, and a note says why; the agreement budgets still hold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.drift import chance_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from quantserve.cli import main
from quantserve.metrics import chance_labels_note, labels_at_chance


def test_chance_is_one_over_the_classes_on_enough_samples() -> None:
    assert labels_at_chance(0.0035, 78, 288)
    assert labels_at_chance(1 / 78, 78, 288), "at chance counts"
    assert not labels_at_chance(0.02, 78, 288)
    assert not labels_at_chance(0.0, 78, 49), "too few samples to tell"
    assert labels_at_chance(0.5, 2, 50) and not labels_at_chance(0.52, 2, 50)
    assert chance_labels_note("category", 0.0035, 78, 288) == (
        "output 'category': FP32's own accuracy against the labels is 0.0035 on 288 labelled samples, at or below "
        "chance (1/78 = 0.0128): the labels are not this output's classes, so its accuracy drop was not budgeted (its "
        "agreement with FP32 still is); labels meant for a --metric alone: save them as floats (float labels are "
        "truth for a --metric alone)"
    )
    assert chance_labels_note("category", 0.9, 78, 288) == ""


def _scores(rows: int = 100, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Class scores whose answer is row % classes, and labels FP32 gets right on exactly a tenth of the rows."""
    answers = np.arange(rows) % classes
    scores = np.eye(classes, dtype=np.float32)[answers] * 5
    labels = (answers + 1) % classes
    labels[::classes] = answers[::classes]  # 10 of 100 right: chance for 10 classes
    return scores, labels


def test_labels_at_chance_budget_no_accuracy_drop() -> None:
    fp32, labels = _scores()
    int8 = fp32.copy()
    int8[0] = np.roll(int8[0], 1)  # one of FP32's ten right answers lost: a drop of 1 point, past a 0.5 budget
    budget = DriftBudget(max_accuracy_drop_points=0.5, min_top1_agreement=0.9)
    report = measure_drift({"scores": fp32}, {"scores": int8}, {"scores": "classification"}, budget, labels)
    record = report.outputs["scores"]
    assert record["fp32_accuracy"] == 0.1 and record["accuracy"] == pytest.approx(0.09)
    assert "accuracy_drop_points" not in record and record["labels_at_chance"] == {"classes": 10, "samples": 100}
    assert report.holds, [v.line() for v in report.violations]
    assert chance_notes(report.outputs) == [chance_labels_note("scores", 0.1, 10, 100)]


def test_labels_above_chance_are_still_budgeted() -> None:
    fp32, labels = _scores()
    labels[1::10] = (np.arange(100) % 10)[1::10]  # 20 of 100 right
    int8 = fp32.copy()
    int8[0] = np.roll(int8[0], 1)
    budget = DriftBudget(max_accuracy_drop_points=0.5, min_top1_agreement=0.9)
    report = measure_drift({"scores": fp32}, {"scores": int8}, {"scores": "classification"}, budget, labels)
    assert [v.metric for v in report.violations] == ["accuracy_drop_points"]
    assert chance_notes(report.outputs) == []


def linear_classifier(path: Path) -> np.ndarray:
    """A 16 → 10 Gemm classifier written with onnx.helper; returns its weights."""
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
    return weights


def test_optimize_says_its_labels_are_at_chance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = linear_classifier(tmp_path / "linear.onnx")
    x = np.random.default_rng(1).normal(size=(400, 16)).astype(np.float32)
    labels = ((x @ weights).argmax(axis=1) + 1) % 10  # another task's ids: FP32 never answers one
    np.savez(tmp_path / "other.npz", x=x, labels=labels)
    out = tmp_path / "b"
    argv = ["optimize", str(tmp_path / "linear.onnx"), "--calib", str(tmp_path / "other.npz"), "--out", str(out)]
    main([*argv, "--skip-timing", "--keep-failing"])
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "output 'logits': FP32's own accuracy against the labels is 0.0000 on 268 labelled samples, at or below "
        "chance (1/10 = 0.1000): the labels are not this output's classes" in err
    )
    record = json.loads((out / "manifest.json").read_text())
    assert "accuracy_drop_points" not in record["verification"]["outputs"]["logits"]
