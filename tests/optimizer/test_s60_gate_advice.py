"""A drift refusal names the --gate that would hold, measured (`optimizer.gate_advice`), and stays a refusal.

swift-f0's Conv-only INT8 was refused on pitch cosine 0.9505 over every frame, 0.997 on the voiced ones (session
59), and nothing told the user that `--gate pitch=confidence` judges it where it is read. Here a tiny model answers
`value` and `confidence` (N, T); its "INT8" copy answers `value` wildly wrong where the confidence is under 0.5
(the advice is given), or where it is over 0.5 (none is)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.gate_advice import gate_advice
from optimizer.output_kinds import infer_output_kinds
from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve.data import TensorData

ROWS, FRAMES = 300, 32


def _model(path: Path, noise: str = "") -> Path:
    """input (N, T) -> value = 100·x + 200 (+ 3000·relu(-x)² where `noise` is "below", − 3000·relu(x)² where
    "above": wrong where the confidence is under or over 0.5), confidence = sigmoid(4·x)."""
    nodes = [
        helper.make_node("Mul", ["input", "four"], ["x4"]),
        helper.make_node("Sigmoid", ["x4"], ["confidence"]),
        helper.make_node("Mul", ["input", "hundred"], ["x100"]),
        helper.make_node("Add", ["x100", "base"], ["clean" if noise else "value"]),
    ]
    inits = [
        helper.make_tensor(name, TensorProto.FLOAT, [], [v])
        for name, v in (("four", 4.0), ("hundred", 100.0), ("base", 200.0), ("big", 3000.0))
    ]
    if noise:
        side = [helper.make_node("Neg", ["input"], ["side"])] if noise == "below" else []
        nodes += [
            *side,
            helper.make_node("Relu", ["side" if side else "input"], ["part"]),
            helper.make_node("Mul", ["part", "part"], ["sq"]),
            helper.make_node("Mul", ["sq", "big"], ["wild"]),
            helper.make_node("Add" if side else "Sub", ["clean", "wild"], ["value"]),
        ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", FRAMES]) for n in ("value", "confidence")]
    graph = helper.make_graph(
        nodes, "advised", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", FRAMES])], outputs, inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _inputs() -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)


def _verified(tmp_path: Path, noise: str) -> dict:
    fp32, int8 = _model(tmp_path / "fp32.onnx"), _model(tmp_path / "int8.onnx", noise)
    return VerifyAgainstReference(fp32, TensorData({"input": _inputs()}), "held_out.npz").measure(int8)


def test_a_refusal_names_the_gate_that_would_hold_and_stays_a_refusal(tmp_path: Path) -> None:
    record = _verified(tmp_path, "below")
    assert not record["holds"]
    voiced = int((_inputs() >= 0).sum())
    line = drift_refusal(record)
    assert line.startswith("INT8 misses the drift budget: output 'value'")
    assert line.endswith(
        f"; nothing written (pass --keep-failing to ship anyway); judged only where FP32's 'confidence' ≥ 0.5, "
        f"output 'value' would hold (correlation 1.000 over {voiced} of {ROWS * FRAMES} positions): if 'value' is "
        "meaningful only there, rerun with --gate value=confidence"
    )


def test_no_gate_is_named_where_the_output_misses_under_it_too(tmp_path: Path) -> None:
    record = _verified(tmp_path, "above")
    assert not record["holds"] and "advice" not in record
    assert "--gate" not in drift_refusal(record)


def test_no_gate_is_named_without_a_sibling_in_zero_to_one() -> None:
    x = _inputs()
    reference = {"value": 100 * x + 200, "loudness": 3 * x}  # not a confidence: values outside [0, 1]
    got = dict(reference, value=reference["value"] + 3000 * np.maximum(-x, 0) ** 2)
    kinds = infer_output_kinds(reference)
    report = measure_drift(reference, got, kinds, DriftBudget())
    assert not report.holds
    assert gate_advice(reference, got, kinds, DriftBudget(), report) == []


def test_the_advice_reads_the_gate_at_the_label_threshold_given() -> None:
    x = _inputs()
    reference = {"value": 100 * x + 200, "confidence": 1 / (1 + np.exp(-4 * x))}
    got = dict(reference, value=reference["value"] + 3000 * np.maximum(0.5 - x, 0) ** 2)  # wrong under x = 0.5
    kinds = infer_output_kinds(reference)
    at_half = DriftBudget()
    assert gate_advice(reference, got, kinds, at_half, measure_drift(reference, got, kinds, at_half)) == []
    higher = DriftBudget(label_threshold=0.9)  # sigmoid(4·x) ≥ 0.9 where x ≥ 0.55
    lines = gate_advice(reference, got, kinds, higher, measure_drift(reference, got, kinds, higher))
    selected = int((reference["confidence"] >= 0.9).sum())
    assert len(lines) == 1 and "FP32's 'confidence' ≥ 0.9, output 'value' would hold" in lines[0]
    assert f" over {selected} of {ROWS * FRAMES} positions)" in lines[0]


def test_the_searchs_refusal_names_the_gate_its_closest_model_would_hold_under(tmp_path: Path) -> None:
    """swift-f0 (session 60): the INT8 search's own refusal ("no INT8 model holds the drift budget: … closest …")
    said nothing of the gate, where verification's line did: the closest candidate's measured advice goes with it."""
    from optimizer.int8_measure import Candidate
    from optimizer.int8_refusal_words import worst_line

    x = _inputs()
    reference = {"value": 100 * x + 200, "confidence": 1 / (1 + np.exp(-4 * x))}
    got = dict(reference, value=reference["value"] + 3000 * np.maximum(-x, 0) ** 2)  # wrong only where unvoiced
    kinds = infer_output_kinds(reference)
    report = measure_drift(reference, got, kinds, DriftBudget())
    report.advice = gate_advice(reference, got, kinds, DriftBudget(), report)
    assert report.advice, "the gate should hold where FP32's confidence is high"
    closest = Candidate("static_qdq", tmp_path / "int8.onnx", [], report, None, 1.0)  # type: ignore[arg-type]
    line = worst_line(closest)
    assert line.startswith("output 'value'") and line.endswith("rerun with --gate value=confidence"), line
