"""Signed feature vectors at an embedding's width whose largest value is one feature on most rows (openWakeWord's
(N, 1, 1, 96) speech embedding: one feature on 84 % of rows) are an embedding, judged by cosine, not a classifier's
logits judged by the top-1 agreement of an argmax that means nothing (refused at 0.8967 with cosine intact). A
classifier stays one: its answers vary, or its width is a class count, or labels of its classes come with it, or its
softmax went through a Q/DQ pair (fer's 7 emotions, rows summing to 253/255)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.kind_doubt import kind_doubt
from optimizer.output_kinds import infer_output_kinds
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData

WIDTH = 96


def _embedding_model(path: Path, noise: float) -> Path:
    """x (N, 16) → Gemm → (N, 1, 1, 96) features, one of them (7) of large scale: the largest on ~70 % of rows;
    `noise` perturbs the weights as INT8 would (the candidate)."""
    rng = np.random.default_rng(4)
    w, b = rng.normal(size=(16, WIDTH)), rng.normal(size=WIDTH)
    b[7], w[:, 7] = 12.0, 0.5 * w[:, 7]
    w += noise * np.random.default_rng(5).normal(size=w.shape)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w", "b"], ["features"]),
            helper.make_node("Reshape", ["features", "shape"], ["embedding"]),
        ],
        "outlier_embedding",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1, 1, WIDTH])],
        [
            numpy_helper.from_array(w.astype(np.float32), "w"),
            numpy_helper.from_array(b.astype(np.float32), "b"),
            numpy_helper.from_array(np.array([-1, 1, 1, WIDTH], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, path)
    return path


def test_an_embedding_with_an_outlier_feature_is_judged_by_cosine(tmp_path: Path) -> None:
    data = TensorData({"x": np.random.default_rng(6).normal(size=(300, 16)).astype(np.float32)})
    reference = _embedding_model(tmp_path / "fp32.onnx", 0.0)
    candidate = _embedding_model(tmp_path / "int8.onnx", 0.05)  # cosine 0.999, a few near-tie argmaxes moved
    record = VerifyAgainstReference(reference, data, "x.npz").measure(candidate)
    output = record["outputs"]["embedding"]
    assert output["kind"] == "embedding" and output["cosine_worst"] > 0.99
    assert record["holds"] is True and record["top1_agreement"] is None
    assert output["kind_doubt"].endswith("pass --output-kind embedding=classification (or labels of its classes)")
    fp32, int8 = (
        VerifyAgainstReference(reference, data, "").outputs(path)["embedding"] for path in (reference, candidate)
    )
    assert (fp32.argmax(axis=3) != int8.argmax(axis=3)).mean() > 0.01  # read as logits it was refused at top-1
    broken = _embedding_model(tmp_path / "broken.onnx", 1.0)
    assert VerifyAgainstReference(reference, data, "x.npz").measure(broken)["holds"] is False


def _logits(rows: int, classes: int, dominant: float, seed: int) -> np.ndarray:
    """Signed, peaked logits: each row commits to a class, `dominant` of the rows to class 0."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, classes))
    answers = np.where(rng.uniform(size=rows) < dominant, 0, rng.integers(1, classes, size=rows))
    logits[np.arange(rows), answers] += 12.0
    return logits.astype(np.float32)


def test_classifiers_stay_classification() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, WIDTH, size=300)
    quantized = np.exp(3 * rng.normal(size=(300, 7)))
    quantized = np.round(quantized / quantized.sum(axis=1, keepdims=True) * 255) / 255  # a softmax through Q/DQ
    assert np.abs(quantized.sum(axis=1) - 1).max() > 1e-3  # no distribution to a 1e-3 sum check
    reference = {
        "imagenet": _logits(300, 1000, 0.7, 1),  # a class count, not a layer's width: one class on most rows
        "spread_96": _logits(300, WIDTH, 0.1, 2),  # answers vary: a 96-way classifier
        "labelled_96": _logits(300, WIDTH, 0.7, 3),  # one class on most rows, but labels of its classes given
        "fer": quantized.astype(np.float32),
    }
    kinds = {
        name: infer_output_kinds({name: values}, labels=labels if name == "labelled_96" else None)[name]
        for name, values in reference.items()
    }
    assert kinds == {name: "classification" for name in reference}
    assert infer_output_kinds({"e": reference["labelled_96"]}) == {"e": "embedding"}  # the same rows, no labels


def test_borderline_widths_name_their_doubt() -> None:
    logits = _logits(300, WIDTH, 0.35, 4)  # one feature the largest on a third of the rows: read as logits
    assert infer_output_kinds({"e": logits}) == {"e": "classification"}
    doubt = kind_doubt("e", "classification", logits)
    assert "96 values are an embedding's width and one of them is the largest on 3" in doubt
    assert doubt.endswith("if it is an embedding, pass --output-kind e=embedding")
    report = measure_drift({"e": logits}, {"e": logits[::-1].copy()}, {}, DriftBudget())
    assert "--output-kind e=embedding" in report.violations[0].line("classification")
    assert kind_doubt("e", "classification", _logits(300, WIDTH, 0.1, 5)) == ""  # answers spread: no doubt
    assert kind_doubt("e", "classification", _logits(300, 100, 0.35, 5)) == ""  # 100 is a class count
