"""The verification record's class figures (top-1 agreement, accuracies) come only from outputs whose kind has
classes: an embedding given integer labels (speaker ids, for a --metric) is judged by its cosines alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.export import export_onnx
from optimizer.source import load_source
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData, load_npz


def _unit_embedding(path: Path, noise: float) -> Path:
    """x (N, 16) → unit-norm 64-d rows (MatMul, LpNormalization); `noise` perturbs the weights (the candidate)."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(16, 64)).astype(np.float32)
    w += noise * np.random.default_rng(8).normal(size=w.shape).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("LpNormalization", ["h"], ["embedding"], axis=1, p=2),
        ],
        "unit_embedding",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 64])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _speakers(rows: int = 300) -> TensorData:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(rows, 16)).astype(np.float32)
    return TensorData({"x": x}, labels=rng.integers(0, 40, size=rows))  # speaker ids: no class of the output's


def test_an_embedding_with_integer_labels_has_no_accuracy_or_top1(tmp_path: Path) -> None:
    reference = _unit_embedding(tmp_path / "fp32.onnx", 0.0)
    candidate = _unit_embedding(tmp_path / "int8.onnx", 0.03)  # cosine ≈ 0.999, some argmaxes move
    record = VerifyAgainstReference(reference, _speakers(), "speakers.npz").measure(candidate)
    output = record["outputs"]["embedding"]
    assert output["kind"] == "embedding" and output["cosine_mean"] > 0.99
    assert record["top1_agreement"] is None and record["accuracy"] is None and record["fp32_accuracy"] is None
    assert not {"top1_agreement", "accuracy", "fp32_accuracy", "accuracy_drop_points"} & set(output)
    assert record["holds"] is True


def test_a_drifting_embedding_with_labels_is_refused_on_its_cosines_alone(tmp_path: Path) -> None:
    reference = _unit_embedding(tmp_path / "fp32.onnx", 0.0)
    candidate = _unit_embedding(tmp_path / "int8.onnx", 0.5)
    record = VerifyAgainstReference(reference, _speakers(), "speakers.npz").measure(candidate)
    assert record["holds"] is False
    assert {v["metric"] for v in record["violations"]} <= {"cosine_mean", "cosine_worst"}


def test_a_classifier_keeps_its_accuracy(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    artifact = export_onnx(load_source(tiny_onnx), tmp_path / "m.onnx")
    data = load_npz(calib_npz, artifact.manifest.inputs)
    assert data.labels is not None
    record = VerifyAgainstReference(artifact.path, data, "calib.npz").measure(artifact.path)
    output = record["outputs"]["logits"]
    assert output["kind"] == "classification"
    assert record["top1_agreement"] == 1.0
    assert record["accuracy"] is not None and record["accuracy"] == output["accuracy"] == record["fp32_accuracy"]
