"""Per-position labels settle a per-position softmax as per-position classification (session 61): sleepecg's sleep
stager answers a softmax over 4 stages per 30-s epoch, (N, 960, 4), and its data's labels are a stage per epoch,
(N, 960), -100 on padded epochs. optimize read the output as CTC ("sequence": decoded-sequence agreement over whole
nights), left the labels unscored and refused; judged per epoch INT8 kept 0.9982 of the stages, accuracy 0.7272 ->
0.7269. Labels of the output's positions, class ids in [0, C), say it classifies each position; CTC's targets are
label sequences of their own length. Labels that do not fit (another shape, ids past C) leave today's reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from quantserve import cli

N, T, FEATURES, STAGES = 48, 40, 6, 4
RNG = np.random.default_rng(61)
LENGTHS = RNG.integers(T // 4, T + 1, N)
PADDED = np.arange(T)[None, :] >= LENGTHS[:, None]


def stager(path: Path) -> Path:
    """A sleep stager in small: features (N, T, 6) -> Softmax(features · W + b) per epoch, stages (N, T, 4)."""
    weights = numpy_helper.from_array(RNG.normal(0, 2.5, (FEATURES, STAGES)).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.array([0.5, 0.0, 0.2, -0.3], np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["scores"], name="fc"),
            helper.make_node("Add", ["scores", "b"], ["logits"], name="fc_bias"),
            helper.make_node("Softmax", ["logits"], ["stages"], axis=-1, name="softmax"),
        ],
        "stager",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", T, FEATURES])],
        [helper.make_tensor_value_info("stages", TensorProto.FLOAT, ["N", T, STAGES])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def features(rows: int = N) -> np.ndarray:
    values = RNG.normal(0, 1, (rows, T, FEATURES)).astype(np.float32)
    values[PADDED[:rows]] = -1.0  # padded epochs, as sleepecg pads them
    return values


def stage_labels(stages: np.ndarray) -> np.ndarray:
    """FP32's stage at three epochs in four, another stage at the fourth; -100 on padded epochs."""
    labels = stages.argmax(axis=2)
    labels[:, ::4] = (labels[:, ::4] + 1) % STAGES
    return np.where(PADDED[: len(stages)], -100, labels).astype(np.int64)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stager(tmp_path_factory.mktemp("stager") / "stager.onnx")


@pytest.fixture(scope="module")
def stages(model: Path) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"features": features()})[0])


def test_without_labels_a_per_position_softmax_reads_as_a_sequence(stages: np.ndarray) -> None:
    assert infer_output_kinds({"stages": stages}) == {"stages": "sequence"}


def test_labels_of_its_positions_read_it_as_per_position_classification(stages: np.ndarray) -> None:
    labels = stage_labels(stages)
    kinds = infer_output_kinds({"stages": stages}, labels=labels)
    assert kinds == {"stages": "token_classification"}
    report = measure_drift({"stages": stages}, {"stages": stages}, kinds, DriftBudget(), labels)
    record = report.outputs["stages"]
    assert record["kind"] == "token_classification"
    assert record["tokens_judged"] == int(LENGTHS.sum()), "padded epochs (-100) not judged"
    assert record["token_agreement"] == 1.0
    assert record["fp32_accuracy"] == pytest.approx(float(np.mean(stages.argmax(axis=2)[~PADDED] == labels[~PADDED])))
    notes = [note for note in kind_notes(report.outputs) if note.startswith("output 'stages': read as per-position")]
    assert notes == [
        "output 'stages': read as per-position classification (token_classification), not as CTC-style sequences, "
        f"because the labels are a class id in [0, 4) per position, shape ({N}, {T}) as the output's (N, T) "
        f"({int(PADDED.sum())} negative, not judged); --output-kind stages=sequence judges it as CTC"
    ]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda labels: labels[:, : T // 2], id="other-length"),  # a label sequence of its own length
        pytest.param(lambda labels: np.where(labels == 3, STAGES, labels), id="ids-past-its-classes"),
        pytest.param(lambda labels: labels.astype(np.float32), id="not-integers"),
        pytest.param(lambda labels: np.full_like(labels, -100), id="none-labelled"),
    ],
)
def test_labels_that_do_not_fit_keep_the_sequence_reading(
    stages: np.ndarray, bad: Callable[[np.ndarray], np.ndarray]
) -> None:
    assert infer_output_kinds({"stages": stages}, labels=bad(stage_labels(stages))) == {"stages": "sequence"}


def test_a_typed_sequence_stays_one(stages: np.ndarray) -> None:
    kinds = infer_output_kinds({"stages": stages}, {"stages": "sequence"}, labels=stage_labels(stages))
    assert kinds == {"stages": "sequence"}


def test_optimize_judges_it_per_position_by_default(
    model: Path, stages: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = tmp_path / "eval.npz"
    np.savez(held, features=features(), labels=stage_labels(stages))
    out = tmp_path / "build"
    assert cli.main(["optimize", str(model), "--precision", "fp32", "--eval", str(held), "--out", str(out)]) == 0
    verification = json.loads((out / "manifest.json").read_text())["verification"]
    record = verification["outputs"]["stages"]
    assert record["kind"] == "token_classification"
    assert record["tokens_judged"] == int(LENGTHS.sum()) and "accuracy" in record
    assert "read as per-position classification (token_classification)" in capsys.readouterr().err
