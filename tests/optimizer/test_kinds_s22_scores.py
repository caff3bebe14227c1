"""Per-class sigmoid scores with many exact zeros are scores, judged by their label sets, not ReLU features judged by
cosine: ONNX Runtime's Sigmoid gives exactly 0 below about -17.5, and BirdNET's location model (6522 species, 27.5 %
zeros) was read as an embedding, passed at cosine 0.9976 and shipped with its species list at 0.03 identical on 20 %
of the rows. ReLU features in [0, 1] stay embeddings. Where the verdict at --label-threshold may not be the one at the
model's own cut-off, a line says so and names the flag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve.data import TensorData

CLASSES = 300  # species, tags: not an embedding's width


def _occurrence_model(path: Path) -> Path:
    """(lat, lon, week)-like x (N, 3) → Gemm → Relu → Gemm → Sigmoid (N, 300): per-class occurrence scores, a
    third of the classes never near (logits far below -17.5: exact zeros in ONNX Runtime), dozens on per row."""
    rng = np.random.default_rng(1)
    weights = {
        "w1": rng.normal(0.0, 3.0, size=(3, 64)),
        "b1": rng.normal(0.0, 1.0, size=64),
        "w2": rng.normal(0.0, 1.0, size=(64, CLASSES)),
        "b2": rng.normal(-14.0, 8.0, size=CLASSES),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["hidden"]),
            helper.make_node("Relu", ["hidden"], ["features"]),
            helper.make_node("Gemm", ["features", "w2", "b2"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["scores"]),
        ],
        "occurrence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", CLASSES])],
        [numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, path)
    return path


class _Rows(CalibrationDataReader):
    def __init__(self, x: np.ndarray) -> None:
        self.rows = iter([{"x": x[i : i + 50]} for i in range(0, len(x), 50)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.rows, None)


def _int8(reference: Path, path: Path, x: np.ndarray) -> Path:
    """ONNX Runtime's static Q/DQ INT8 of `reference`, per-tensor, calibrated on `x` (min/max)."""
    quantize_static(str(reference), str(path), _Rows(x), quant_format=QuantFormat.QDQ, weight_type=QuantType.QInt8)
    return path


def test_sigmoid_scores_with_many_exact_zeros_are_judged_by_their_label_sets(tmp_path: Path) -> None:
    x = np.random.default_rng(3).uniform(-1.0, 1.0, size=(500, 3)).astype(np.float32)
    reference = _occurrence_model(tmp_path / "fp32.onnx")
    candidate = _int8(reference, tmp_path / "int8.onnx", x[:200])
    data = TensorData({"x": x[200:]})
    fp32 = VerifyAgainstReference(reference, data, "").outputs(reference)["scores"]
    assert np.mean(fp32 == 0.0) > 0.25 and fp32.max() <= 1.0  # ONNX Runtime's Sigmoid: exact zeros, as a ReLU's
    record = VerifyAgainstReference(reference, data, "x.npz").measure(candidate)
    output = record["outputs"]["scores"]
    assert output["kind"] == "multilabel" and record["holds"] is False
    assert output["cosine_mean"] > 0.99 and output["cosine_worst"] > 0.97  # what passed it as an embedding
    line = drift_refusal(record)
    agreement = f"{output['label_set_agreement']:.4g} < budget 0.99"
    at = f"at --label-threshold 0.5; {output['label_ties']} decisions within 0.02 of it left out"
    assert f"output 'scores' (multilabel): label-set agreement ({at}) {agreement}" in line, line
    zeros = f"{np.mean(fp32 == 0.0) * 100:.0f} % of its values are exactly 0"
    assert f"read as per-class sigmoid scores although {zeros}" in line
    assert "if they are features, pass --output-kind scores=embedding" in line
    int8 = VerifyAgainstReference(reference, data, "").outputs(candidate)
    assert measure_drift({"scores": fp32}, int8, {"scores": "embedding"}, DriftBudget()).holds  # how it shipped


def test_relu_features_in_the_unit_range_stay_embeddings() -> None:
    rng = np.random.default_rng(0)
    relu = np.maximum(rng.normal(size=(256, 512)), 0.0)
    logits = rng.normal(-6.0, 3.0, size=(256, 200))
    logits[:, :80] = -40.0  # classes never near: exact zeros
    logits[np.arange(256)[:, None], rng.integers(80, 200, size=(256, 4))] = 5.0  # several scattered on a row
    single = rng.normal(-8.0, 2.0, size=(256, 200))
    single[:, :80] = -40.0
    single[np.arange(256), rng.integers(80, 200, size=256)] = 6.0  # one class on a row: a classifier's scores
    outputs = {
        "scaled": relu / 10,  # in [0, 1], half of it zeros, nothing near 1
        "row_peaked": relu / relu.max(axis=1, keepdims=True),  # each row's largest exactly 1
        "clipped": np.minimum(relu, 1.0),  # Relu → Clip(0, 1): a fifth of the values at 1
        "tags": 1 / (1 + np.exp(-logits)) * (logits > -17.5),  # as ONNX Runtime's Sigmoid flushes them
        "one_class": 1 / (1 + np.exp(-single)) * (single > -17.5),
    }
    assert all(np.mean(rows == 0.0) > 0.25 for rows in outputs.values())
    assert infer_output_kinds(outputs) == {
        "scaled": "embedding",
        "row_peaked": "embedding",
        "clipped": "embedding",
        "tags": "multilabel",
        "one_class": "classification",
    }


def _sparse_tags(rows: int, tagged: float, seed: int = 2) -> np.ndarray:
    """Sigmoid scores over 40 tags: `tagged` of the rows with three tags on, scattered; every row with weak tags
    around 0.03-0.1 (logits near -3), as presence models read at a low cut-off have."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(-5.0, 1.5, size=(rows, 40))
    for row in np.flatnonzero(rng.uniform(size=rows) < tagged):
        logits[row, rng.choice(40, size=3, replace=False)] = [4.0, 2.0, 1.0]
    return 1 / (1 + np.exp(-logits))


def test_label_sets_that_hold_at_the_threshold_but_not_at_a_tenth_of_it_are_noted() -> None:
    reference = _sparse_tags(400, 0.9)
    weak = (reference >= 0.04) & (reference < 0.05)
    moved = np.where(weak, 0.051, np.where((reference >= 0.05) & (reference < 0.06), 0.049, reference))
    report = measure_drift({"tags": reference}, {"tags": moved}, {}, DriftBudget())
    record = report.outputs["tags"]
    assert record["kind"] == "multilabel" and report.holds and record["label_set_agreement"] == 1.0
    lower = record["label_set_agreement_lower"]
    assert lower < 0.99 and record["lower_label_threshold"] == 0.05
    note = (
        f"output 'tags' (multilabel): label sets agree on 1 of the rows at --label-threshold 0.5 but on {lower:.4g} "
        "at a tenth of it (0.05): if its classes are read at another cut-off, pass that with --label-threshold"
    )
    assert kind_notes(report.outputs) == [note]
    at_005 = measure_drift({"tags": reference}, {"tags": moved}, {}, DriftBudget(label_threshold=0.05))
    assert not at_005.holds  # the user's cut-off, given, is the one judged
    assert "(at --label-threshold 0.05; " in at_005.violations[0].line()
    faithful = measure_drift({"tags": reference}, {"tags": reference.copy()}, {}, DriftBudget()).outputs["tags"]
    assert "kind_note" not in faithful and "kind_doubt" not in faithful


def test_most_rows_without_a_class_on_name_the_threshold() -> None:
    reference = _sparse_tags(400, 0.3)
    assert infer_output_kinds({"tags": reference}) == {"tags": "multilabel"}
    moved = reference.copy()
    moved[:40] = np.where(reference[:40] >= 0.5, 0.45, reference[:40])  # rows that lose their tags
    report = measure_drift({"tags": reference}, {"tags": moved}, {}, DriftBudget())
    empty = report.outputs["tags"]["rows_without_labels"]
    assert empty > 0.5 and not report.holds
    doubt = f"{empty * 100:.0f} % of the rows have no class on at --label-threshold 0.5: if its classes are read at"
    assert doubt in report.violations[0].line("multilabel")
    logits = np.log(reference / (1 - reference))
    named = measure_drift({"t": logits}, {"t": logits}, {"t": "multilabel"}, DriftBudget())
    assert "no class on at --label-threshold 0.5 (logit 0): " in named.outputs["t"]["kind_note"]
