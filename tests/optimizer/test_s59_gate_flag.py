"""`--gate NAME=BY`: output NAME judged only where FP32's BY reaches --label-threshold (`optimizer.gated_maps`).

swift-f0's pitch (N, T) in Hz is arbitrary on unvoiced frames (FP32 against itself served differed by 1026 Hz on
one): its Conv-only INT8 (task metric 0.9903 → 0.9904) read pitch cosine 0.9505 over every frame, 0.997 on the
voiced ones (session 59). Here a tiny model answers `value` and `confidence` (N, T); its "INT8" copy answers `value`
wildly wrong only where the confidence is under 0.5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.gated_maps import parse_gates
from optimizer.output_kinds import infer_output_kinds
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

ROWS, FRAMES = 300, 32


def _model(path: Path, wild: bool, boxes: bool = False) -> Path:
    """input (N, T) → x (the same, through a MatMul) → confidence = sigmoid(4x), value = 100x + 200 (+ 3000
    relu(-x)² where `wild`: only where x < 0, the confidence < 0.5); with `boxes`, a (N, T, 4) output too."""
    nodes = [
        helper.make_node("MatMul", ["input", "eye"], ["x"]),  # something to quantize
        helper.make_node("Mul", ["x", "four"], ["x4"]),
        helper.make_node("Sigmoid", ["x4"], ["confidence"]),
        helper.make_node("Mul", ["x", "hundred"], ["x100"]),
        helper.make_node("Add", ["x100", "base"], ["clean" if wild else "value"]),
    ]
    inits = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [v])
        for name, v in (("four", 4.0), ("hundred", 100.0), ("base", 200.0), ("big", 3000.0))
    ]
    inits.append(helper.make_tensor("eye", TensorProto.FLOAT, [FRAMES, FRAMES], np.eye(FRAMES).ravel().tolist()))
    if wild:
        nodes += [
            helper.make_node("Neg", ["x"], ["negx"]),
            helper.make_node("Relu", ["negx"], ["below"]),
            helper.make_node("Mul", ["below", "below"], ["sq"]),
            helper.make_node("Mul", ["sq", "big"], ["noise"]),
            helper.make_node("Add", ["clean", "noise"], ["value"]),
        ]
    outputs = [
        helper.make_tensor_value_info("value", TensorProto.FLOAT, ["N", FRAMES]),
        helper.make_tensor_value_info("confidence", TensorProto.FLOAT, ["N", FRAMES]),
    ]
    if boxes:
        nodes += [
            helper.make_node("Unsqueeze", ["value", "axes"], ["v1"]),
            helper.make_node("Tile", ["v1", "reps"], ["boxes"]),
        ]
        inits += [
            helper.make_tensor("axes", TensorProto.INT64, [1], [2]),
            helper.make_tensor("reps", TensorProto.INT64, [3], [1, 1, 4]),
        ]
        outputs.append(helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", FRAMES, 4]))
    graph = helper.make_graph(
        nodes, "gated", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", FRAMES])], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _data() -> TensorData:
    x = np.random.default_rng(0).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    return TensorData({"input": x})


def _verify(tmp_path: Path, budget: DriftBudget, boxes: bool = False) -> dict:
    fp32 = _model(tmp_path / "fp32.onnx", wild=False, boxes=boxes)
    int8 = _model(tmp_path / "int8.onnx", wild=True, boxes=boxes)
    return VerifyAgainstReference(fp32, _data(), "held_out.npz", budget=budget).measure(int8)


def test_value_wrong_where_unconfident_is_refused_without_a_gate(tmp_path: Path) -> None:
    record = _verify(tmp_path, DriftBudget())
    assert not record["holds"]
    assert any(v["output"] == "value" for v in record["violations"])


def test_value_gated_by_its_confidence_holds_and_says_where(tmp_path: Path) -> None:
    record = _verify(tmp_path, DriftBudget(gates=parse_gates(["value=confidence"])))
    assert record["holds"], record["violations"]
    voiced = int((_data().arrays["input"] >= 0).sum())
    where = record["outputs"]["value"]["judged_at"]
    assert where == f"at the {voiced} positions where FP32's 'confidence' ≥ 0.5"


def test_a_gate_still_refuses_drift_where_the_confidence_is_high(tmp_path: Path) -> None:
    x = _data().arrays["input"]
    reference = {"value": 100 * x + 200, "confidence": 1 / (1 + np.exp(-4 * x))}
    got = dict(reference, value=reference["value"] + 3000 * np.maximum(x, 0) ** 2)  # wrong where voiced
    budget = DriftBudget(gates=(("value", "confidence"),))
    report = measure_drift(reference, got, infer_output_kinds(reference), budget)
    lines = [v.line() for v in report.violations if v.output == "value"]
    assert lines and "where FP32's 'confidence' ≥ 0.5" in lines[0]


def test_boxes_with_a_trailing_axis_are_gated_by_their_scores(tmp_path: Path) -> None:
    record = _verify(tmp_path, DriftBudget(gates=parse_gates("value=confidence,boxes=confidence")), boxes=True)
    assert record["holds"], record["violations"]
    assert "'confidence' ≥ 0.5" in record["outputs"]["boxes"]["judged_at"]


def test_a_gate_with_no_position_above_the_threshold_judges_nothing_and_says_so() -> None:
    x = _data().arrays["input"]
    reference = {"value": 100 * x + 200, "confidence": np.full_like(x, 0.1)}
    got = dict(reference, value=reference["value"] * -5)
    report = measure_drift(reference, got, infer_output_kinds(reference), DriftBudget(gates=(("value", "confidence"),)))
    assert report.holds and not [v for v in report.violations if v.output == "value"]
    notes = kind_notes(report.outputs)
    assert any("output 'value': not judged: FP32's 'confidence' reaches 0.5 at no position" in n for n in notes)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("value=missing", "--gate value=missing: the model has no output 'missing'"),
        (
            "confidence=boxes",
            "--gate confidence=boxes: output 'boxes' has shape (",
        ),
    ],
)
def test_a_gate_naming_no_output_or_another_shape_is_refused_before_calibration(
    tmp_path: Path, spec: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model(tmp_path / "m.onnx", wild=False, boxes=True)
    np.savez(tmp_path / "calib.npz", input=_data().arrays["input"])

    def no_calibration(*args: object, **kwargs: object) -> None:
        raise AssertionError("calibration reached")

    monkeypatch.setattr("optimizer.pipeline.int8_stage", no_calibration)
    options = OptimizeOptions(
        model, tmp_path / "calib.npz", "int8", "embedded", tmp_path / "out", budget=DriftBudget(gates=parse_gates(spec))
    )
    with pytest.raises(QuantserveError) as caught:
        optimize(options)
    assert words in str(caught.value)
    if "boxes" in spec:
        assert ", 32, 4), not the leading axes of output 'confidence' (" in str(caught.value)


def test_a_gate_spec_without_two_names_is_refused() -> None:
    with pytest.raises(QuantserveError, match="--gate 'value': expected NAME=BY"):
        parse_gates(["value"])


def test_a_gated_output_typed_as_another_kind_is_refused() -> None:
    x = _data().arrays["input"]
    reference = {"value": 100 * x + 200, "confidence": 1 / (1 + np.exp(-4 * x))}
    kinds = infer_output_kinds(reference, {"value": "embedding"})
    with pytest.raises(QuantserveError, match="output 'value' is declared --output-kind value=embedding"):
        measure_drift(reference, reference, kinds, DriftBudget(gates=(("value", "confidence"),)))
