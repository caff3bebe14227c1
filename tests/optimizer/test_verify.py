from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift_budget import DriftBudget
from optimizer.export import export_onnx
from optimizer.source import load_source
from optimizer.verify import VerifyAgainstReference, drift_refusal, first_output_summary
from quantserve.data import TensorData, load_npz


def test_first_output_summary_math() -> None:
    from optimizer.drift_metrics import output_metrics

    expected = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.2, 0.1]])
    got = np.array([[0.9, 0.0], [0.0, 1.0], [0.0, 1.0], [0.2, 0.1]])
    measured = output_metrics("classification", expected, got, np.array([0, 1, 1, 0]))
    record = first_output_summary(expected, got, measured)
    assert record["top1_agreement"] == 0.75
    assert record["max_abs_diff"] == 1.0
    assert np.isclose(record["mean_abs_diff"], (0.1 + 1.0 + 1.0) / 8)
    assert record["fp32_accuracy"] == 0.75  # reference top-1: 0, 1, 0, 0
    assert record["accuracy"] == 1.0  # candidate top-1: 0, 1, 1, 0
    assert record["samples"] == 4


def test_no_labels_no_accuracy() -> None:
    from optimizer.drift_metrics import output_metrics

    record = first_output_summary(np.eye(3), np.eye(3), output_metrics("classification", np.eye(3), np.eye(3)))
    assert record["top1_agreement"] == 1.0
    assert record["accuracy"] is None and record["fp32_accuracy"] is None


def test_model_against_itself(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    artifact = export_onnx(load_source(tiny_onnx), tmp_path / "m.onnx")
    data = load_npz(calib_npz, artifact.manifest.inputs)
    verified = VerifyAgainstReference(artifact.path, data, "calib.npz", batch_size=7)(artifact)
    record = verified.manifest.verification
    assert record is not None
    assert (record["samples"], record["top1_agreement"], record["max_abs_diff"]) == (400, 1.0, 0.0)
    assert record["accuracy"] == record["fp32_accuracy"]
    assert record["holds"] is True and record["violations"] == []
    assert record["outputs"]["logits"]["kind"] == "classification"
    assert record["budget"] == DriftBudget().to_dict()


def _two_output_model(path: Path, score_scale: float) -> Path:
    """x (N, 6) → boxes = x·W (N, 4) and scores = sigmoid(x·V)·score_scale (N, 3): two outputs."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.normal(size=(6, 4)).astype(np.float32), "w")
    v = numpy_helper.from_array(rng.normal(size=(6, 3)).astype(np.float32), "v")
    s = numpy_helper.from_array(np.array(score_scale, np.float32), "s")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["boxes"]),
        helper.make_node("MatMul", ["x", "v"], ["raw"]),
        helper.make_node("Sigmoid", ["raw"], ["sig"]),
        helper.make_node("Mul", ["sig", "s"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3]),
        ],
        [w, v, s],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_every_output_is_verified_and_the_second_can_fail(tmp_path: Path) -> None:
    reference = _two_output_model(tmp_path / "ref.onnx", 1.0)
    candidate = _two_output_model(tmp_path / "cand.onnx", 0.0)  # the second output collapsed to zeros
    data = TensorData({"x": np.random.default_rng(0).normal(size=(32, 6)).astype(np.float32)})
    verify = VerifyAgainstReference(reference, data, "x.npz", output_kinds={"boxes": "dense", "scores": "dense"})
    record = verify.measure(candidate)
    assert set(record["outputs"]) == {"boxes", "scores"}
    assert record["outputs"]["boxes"]["channel_correlation_worst"] > 0.999999
    assert record["outputs"]["scores"]["channel_correlation_worst"] == 0.0
    assert record["holds"] is False and record["max_abs_diff"] == 0.0  # the old first-output record saw nothing
    assert drift_refusal(record) == (
        "INT8 misses the drift budget: output 'scores' (dense): worst channel correlation 0 < budget 0.98 "
        "(and 1 more: output 'scores' worst channel error (RMS / FP32 std) 2.143); nothing written (pass "
        "--keep-failing to ship anyway)"
    )


def _embedding_mlp(path: Path) -> Path:
    rng = np.random.default_rng(3)
    weights = [numpy_helper.from_array((rng.normal(size=(16, 16)) / 4).astype(np.float32), f"w{i}") for i in range(2)]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w0"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["r", "w1"], ["embedding"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 16])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_dynamic_int8_is_judged_at_its_worst_batch_composition(tmp_path: Path) -> None:
    """One activation scale per run: a row beside a 1000× louder neighbour loses its resolution."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    reference = _embedding_mlp(tmp_path / "fp32.onnx")
    quantize_dynamic(str(reference), str(tmp_path / "int8.onnx"), weight_type=QuantType.QInt8)
    x = np.random.default_rng(4).normal(size=(64, 16)).astype(np.float32)
    x[::16] *= 1000.0  # one loud row in every batch of 16
    data = TensorData({"x": x})
    kinds = {"embedding": "embedding"}
    record = VerifyAgainstReference(reference, data, "x.npz", 16, output_kinds=kinds).measure(tmp_path / "int8.onnx")
    compositions = {c["composition"]: c for c in record["batch_compositions"]}
    assert set(compositions) == {
        "batches of 16 in order",
        "batches of 16 shuffled",
        "each row alone",
        "batches of 32 in order",
    }
    assert compositions["each row alone"]["margin"] > compositions["batches of 16 in order"]["margin"]
    worst = min(compositions.values(), key=lambda c: c["margin"])
    assert record["judged_at"] == worst["composition"] and record["margin"] == worst["margin"]
    assert not record["holds"] and drift_refusal(record).startswith(
        f"INT8 misses the drift budget with {worst['composition']}: "
    )


def test_a_batch_independent_model_is_judged_once(tmp_path: Path) -> None:
    reference = _embedding_mlp(tmp_path / "fp32.onnx")
    data = TensorData({"x": np.random.default_rng(5).normal(size=(40, 16)).astype(np.float32)})
    record = VerifyAgainstReference(reference, data, "x.npz", batch_size=16).measure(reference)
    assert "batch_compositions" not in record and record["holds"]


def test_verification_runs_hold_fewer_rows_where_a_row_holds_much(
    tiny_onnx: Path, calib_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """32 rows a run, fewer where their activations would pass the memory bound (DNSMOS, ~370 MB a row, was killed
    by the kernel at 12 GB verifying at 32), never fewer than 4."""
    from optimizer import verify
    from optimizer.tensor_ranges import activation_bytes_per_sample

    data = load_npz(calib_npz)
    assert verify.verify_batch_size(tiny_onnx, data) == 32
    row = activation_bytes_per_sample(tiny_onnx, data)
    monkeypatch.setattr(verify, "VERIFY_MEMORY_BYTES", 10 * row)
    assert verify.verify_batch_size(tiny_onnx, data) == 10
    monkeypatch.setattr(verify, "VERIFY_MEMORY_BYTES", row)
    assert verify.verify_batch_size(tiny_onnx, data) == 4


def test_the_refusal_line_carries_the_doubt_about_an_outputs_kind() -> None:
    record = {
        "outputs": {"Identity": {"kind": "classification"}},
        "violations": [
            {"output": "Identity", "metric": "top1_agreement", "value": 0.9767, "budget": 0.99,
             "higher_is_better": True, "scope": "output", "hint": "… pass --output-kind Identity=dense"},
        ],
    }  # fmt: skip
    assert drift_refusal(record) == (
        "INT8 misses the drift budget: output 'Identity' (classification): top-1 agreement 0.9767 < budget 0.99 "
        "(… pass --output-kind Identity=dense); nothing written (pass --keep-failing to ship anyway)"
    )
    del record["violations"][0]["hint"]  # a record written before hints: read as it was
    assert "--output-kind" not in drift_refusal(record)
