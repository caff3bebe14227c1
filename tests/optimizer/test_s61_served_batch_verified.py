"""A build whose answers depend on their batch is also verified at the default served max batch (session 61).

rxnfp's 12-layer BERT classifier, dynamic INT8, held top-1 agreement 1 in batches of 16 in order, shuffled and each
row alone, while in batches of 64 one near-tie row flipped (0.9987); deploy serves batches of up to 32 by default.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.verify import VerifyAgainstReference
from quantserve.artifact import DEFAULT_MAX_BATCH
from quantserve.data import TensorData

KINDS = {"logits": "classification"}
EPS = 0.01  # the candidate's logit 0 rises by EPS per row in its batch: a row's answer moves with the batch's size


def _classifier(path: Path, per_row: float) -> Path:
    """x (N, 2) → logits = x + [per_row · N, 0]: per_row 0 is batch-independent, else larger batches favour class 0."""
    bias = numpy_helper.from_array(np.array([per_row, 0.0], np.float32), "bias")
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], start=0, end=1),
        helper.make_node("Cast", ["shape"], ["rows"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["rows", "bias"], ["shift"]),
        helper.make_node("Add", ["x", "shift"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "batch_sized",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2])],
        [bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _near_ties() -> TensorData:
    """96 rows, class 1 ahead by 2 to 4, but every tenth by 0.2: held in batches of 8 (shift 0.08), flipped at 32
    (0.32)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 2)).astype(np.float32)
    x[:, 1] = x[:, 0] + rng.uniform(2.0, 4.0, size=96).astype(np.float32)
    x[::10, 1] = x[::10, 0] + 0.2
    return TensorData({"x": x})


def test_a_batch_dependent_build_is_judged_at_the_served_batch_too(tmp_path: Path) -> None:
    reference = _classifier(tmp_path / "fp32.onnx", 0.0)
    candidate = _classifier(tmp_path / "int8.onnx", EPS)
    record = VerifyAgainstReference(reference, _near_ties(), "x.npz", 8, output_kinds=KINDS).measure(candidate)
    compositions = {c["composition"]: c for c in record["batch_compositions"]}
    served = f"batches of {DEFAULT_MAX_BATCH} in order"
    assert set(compositions) == {"batches of 8 in order", "batches of 8 shuffled", "each row alone", served}
    assert compositions["batches of 8 in order"]["holds"] and not compositions[served]["holds"]
    assert record["judged_at"] == served and not record["holds"]
    assert record["largest_batch_verified"] == DEFAULT_MAX_BATCH


def test_fewer_rows_than_the_served_batch_verify_as_many_as_there_are(tmp_path: Path) -> None:
    reference = _classifier(tmp_path / "fp32.onnx", 0.0)
    candidate = _classifier(tmp_path / "int8.onnx", EPS)
    data = TensorData({"x": _near_ties().arrays["x"][:20]})
    record = VerifyAgainstReference(reference, data, "x.npz", 8, output_kinds=KINDS).measure(candidate)
    assert "batches of 20 in order" in {c["composition"] for c in record["batch_compositions"]}
    assert record["largest_batch_verified"] == 20


def test_a_batch_independent_build_runs_no_more_passes(tmp_path: Path) -> None:
    reference = _classifier(tmp_path / "fp32.onnx", 0.0)
    record = VerifyAgainstReference(reference, _near_ties(), "x.npz", 8, output_kinds=KINDS).measure(reference)
    assert "batch_compositions" not in record and "largest_batch_verified" not in record


def test_the_served_pass_holds_no_more_rows_than_its_memory_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of ~1 GB of activations each (DNSMOS holds ~370 MB): the pass at the served batch stops where 4 GB hold,
    and the record says the largest batch verified, which deploy warns about (the kernel killed a verification at
    12 GB before)."""
    import optimizer.verify as verify

    monkeypatch.setattr(verify, "activation_bytes_per_sample", lambda path, data: 1 << 30)
    reference = _classifier(tmp_path / "fp32.onnx", 0.0)
    candidate = _classifier(tmp_path / "int8.onnx", EPS)
    record = VerifyAgainstReference(reference, _near_ties(), "x.npz", 2, output_kinds=KINDS).measure(candidate)
    assert "batches of 4 in order" in {c["composition"] for c in record["batch_compositions"]}
    assert record["largest_batch_verified"] == 4
    monkeypatch.setattr(verify, "activation_bytes_per_sample", lambda path, data: 8 << 30)
    record = VerifyAgainstReference(reference, _near_ties(), "x.npz", 2, output_kinds=KINDS).measure(candidate)
    assert {c["composition"] for c in record["batch_compositions"]} == {
        "batches of 2 in order",
        "batches of 2 shuffled",
        "each row alone",
    }
    assert record["largest_batch_verified"] == 2
