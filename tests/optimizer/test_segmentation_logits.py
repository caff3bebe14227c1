"""A segmenter's raw per-pixel logits (N, 21, H, W), as torchvision's FCN/DeepLab export them: with per-pixel labels
they are judged as a class map by their argmax, so a copy whose weights moved by 8 % (channel correlation still
about 0.985) is refused; without labels they stay a dense map, with a note saying how to have them judged by class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData

CLASSES, SIDE = 21, 32
NOTE = (
    "output 'seg' [N,21,H,W] judged as a dense map; if its channels are per-pixel class scores, pass per-pixel "
    "labels (a 'labels' array [N,H,W] of class ids in the data) or --output-kind seg=class_map"
)


def _segmenter(path: Path, moved: float) -> Path:
    """x (N, 3, H, W) → seg (N, 21, H, W) raw logits of a 1×1 conv; `moved`: the share of the weights' spread by
    which the weights are perturbed (the broken copy)."""
    w = np.random.default_rng(0).normal(size=(CLASSES, 3, 1, 1))
    w += np.random.default_rng(5).normal(size=w.shape) * moved * w.std()
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["seg"])],
        "segmenter",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("seg", TensorProto.FLOAT, ["N", CLASSES, SIDE, SIDE])],
        [numpy_helper.from_array(w.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _models(tmp_path: Path) -> tuple[Path, Path, VerifyAgainstReference]:
    reference = _segmenter(tmp_path / "fp32.onnx", 0.0)
    x = np.random.default_rng(1).normal(size=(24, 3, SIDE, SIDE)).astype(np.float32)
    verify = VerifyAgainstReference(reference, TensorData({"x": x}), "seg.npz")
    labels = verify.outputs(reference)["seg"].argmax(axis=1)  # FP32's answers stand in for the ground truth
    return (
        reference,
        _segmenter(tmp_path / "broken.onnx", 0.08),
        VerifyAgainstReference(reference, TensorData({"x": x}, labels), "seg.npz"),
    )


def test_labelled_logits_are_a_class_map_and_a_broken_copy_is_refused(tmp_path: Path) -> None:
    reference, broken, verify = _models(tmp_path)
    record = verify.measure(broken)
    output = record["outputs"]["seg"]
    assert output["kind"] == "class_map" and output["shape"] == [24, CLASSES, SIDE, SIDE]
    assert output["channel_correlation_worst"] > 0.98, "the dense figures alone pass it"
    assert record["holds"] is False and output["value_agreement"] < 0.99
    assert {v["metric"] for v in record["violations"]} >= {"value_agreement", "class_iou_worst"}
    assert "kind_note" not in output
    assert verify.measure(reference)["holds"] is True


def test_unlabelled_logits_stay_dense_with_a_note(tmp_path: Path) -> None:
    reference, broken, labelled = _models(tmp_path)
    unlabelled = VerifyAgainstReference(reference, TensorData(labelled.data.arrays), "seg.npz")
    output = unlabelled.measure(broken)["outputs"]["seg"]
    assert output["kind"] == "dense" and output["kind_note"] == NOTE


def test_served_evaluation_judges_by_the_labels_and_notes_without_them(tmp_path: Path) -> None:
    reference, broken, verify = _models(tmp_path)
    outputs = {"seg": verify.outputs(reference), "segbad": verify.outputs(broken)}
    labels = verify.data.labels

    def judged(labels: np.ndarray | None, kinds: dict[str, str]) -> VariantAccuracy:
        variants = [VariantAccuracy("seg", 24), VariantAccuracy("segbad", 24)]
        judge_variants(variants, outputs, "seg", DriftBudget(), kinds, labels, verify.data.arrays)
        return variants[1]

    refused = judged(labels, {})
    assert refused.drift is not None and refused.drift["seg"]["kind"] == "class_map"
    assert any(line.startswith("output 'seg' (class_map): share of values unchanged") for line in refused.violations)
    assert refused.notes == []
    assert judged(None, {}).notes == [NOTE]
    assert judged(None, {"seg": "dense"}).notes == [], "a kind the user named needs no note"


def test_nhwc_logits_with_labels_are_judged_along_their_last_axis() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(8, SIDE, SIDE, 5))
    moved = logits + rng.normal(0, 0.3, logits.shape)
    labels = logits.argmax(axis=3)
    assert infer_output_kinds({"seg": logits}, labels=labels) == {"seg": "class_map"}
    record = measure_drift({"seg": logits}, {"seg": moved}, {"seg": "class_map"}, DriftBudget(), labels).outputs["seg"]
    assert record["value_agreement"] == np.mean(moved.argmax(axis=3) == labels)
    assert record["shape"] == [8, SIDE, SIDE, 5]


def test_labels_that_do_not_fit_the_map_leave_it_dense() -> None:
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(4, 6, SIDE, SIDE))  # a detector's score map, a backbone's features
    beyond = rng.integers(0, 9, size=(4, SIDE, SIDE))  # class ids past its 6 channels
    per_sample = rng.integers(0, 6, size=4)  # a classifier's labels for another head
    for labels in (beyond, per_sample, beyond.astype(np.float32)):
        assert infer_output_kinds({"scores": scores}, labels=labels) == {"scores": "dense"}
    void = np.where(rng.random((4, SIDE, SIDE)) < 0.1, 255, scores.argmax(axis=1))  # Pascal VOC's border pixels
    assert infer_output_kinds({"scores": scores}, labels=void) == {"scores": "class_map"}


def test_labels_at_the_input_size_beside_a_smaller_map_are_named() -> None:
    """pm7: SegFormer's (N, 4, 16, 16) logits beside labels of its 64 x 64 input were left dense with a note telling
    the user to pass per-pixel labels, which they had: the note names the two sizes."""
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6, 4, 16, 16)).astype(np.float32)
    labels = rng.integers(0, 4, size=(6, 64, 64))
    assert infer_output_kinds({"logits": logits}, labels=labels) == {"logits": "dense"}
    record = measure_drift({"logits": logits}, {"logits": logits}, {"logits": "dense"}, DriftBudget(), labels)
    assert record.outputs["logits"]["kind_note"] == (
        "output 'logits' [N,4,H,W] judged as a dense map; if its channels are per-pixel class scores, the data's "
        "labels are 64x64 per sample, the map 16x16: pass labels at the map's size (resized by nearest neighbour) or "
        "--output-kind logits=class_map"
    )
