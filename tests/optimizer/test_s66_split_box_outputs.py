"""A detector whose boxes, scores and classes are separate outputs (the TF OD API / TF.js / TFLite layout: boxes
(N, K, 4), scores (N, K) sorted high to low, classes (N, K), beside an anchor index, per-class scores and a count)
is judged as one box list (optimizer.split_box_lists; probe 66C, session 66).

@vladmandic/human's SSD hand detector had each of its score-sorted NMS lists judged slot by slot (boxes as dense
per-anchor scores, classes and scores as embeddings) and refused a faithful INT8 model (F1 0.984, IoU 0.981);
`--output-kind Identity_1:0=box_list` was refused as "no box list".
"""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

from loadtest.variant_scores import headline_output
from optimizer.drift import kind_notes, measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from quantserve.errors import QuantserveError

SAMPLES, ROWS, DETECTIONS, CLASSES = 24, 20, 3, 3


def _split(seed: int = 0) -> dict[str, np.ndarray]:
    """FP32's outputs: three hands per sample (scores 0.6-0.95), then a tail of near-zero scores, as the graph's NMS
    lists them; boxes yxyx normalized, classes near whole numbers (4 + 3/255, as the TF.js weights give them)."""
    rng = np.random.default_rng(seed)
    y1, x1 = rng.uniform(0.0, 0.6, (2, SAMPLES, ROWS))
    h, w = rng.uniform(0.1, 0.35, (2, SAMPLES, ROWS))
    scores = np.concatenate(
        [rng.uniform(0.6, 0.95, (SAMPLES, DETECTIONS)), rng.uniform(1e-6, 0.02, (SAMPLES, ROWS - DETECTIONS))], axis=1
    )
    order = np.argsort(-scores, axis=1, kind="stable")
    take = lambda values: np.take_along_axis(values, order, axis=1)  # noqa: E731
    classes = rng.integers(1, CLASSES + 1, (SAMPLES, ROWS)) + 3 / 255
    return {
        "anchors": take(rng.integers(0, 12804, (SAMPLES, ROWS)).astype(np.float32)),
        "boxes": np.stack([take(y1), take(x1), take(y1 + h), take(x1 + w)], axis=2).astype(np.float32),
        "classes": take(classes).astype(np.float32),
        "multiclass": rng.uniform(0, 1, (SAMPLES, ROWS, CLASSES)).astype(np.float32),
        "scores": take(scores).astype(np.float32),
        "count": np.full((SAMPLES,), ROWS, np.float32),
    }


def _requantized(fp32: dict[str, np.ndarray], seed: int = 1) -> dict[str, np.ndarray]:
    """A faithful INT8 build: the same hands within 0.003 and 0.01 of score, its tail in another order (every output
    of the same rows reordered with it: slot by slot, the tail's boxes, classes and anchors all change)."""
    rng = np.random.default_rng(seed)
    out = {name: values.copy() for name, values in fp32.items()}
    out["boxes"][:, :DETECTIONS] += rng.uniform(-0.003, 0.003, (SAMPLES, DETECTIONS, 4)).astype(np.float32)
    out["scores"][:, :DETECTIONS] += rng.uniform(-0.01, 0.01, (SAMPLES, DETECTIONS)).astype(np.float32)
    for sample in range(SAMPLES):
        tail = DETECTIONS + rng.permutation(ROWS - DETECTIONS)
        for name in ("anchors", "boxes", "classes", "multiclass"):
            out[name][sample, DETECTIONS:] = fp32[name][sample, tail]
    out["multiclass"] += rng.normal(0, 0.2, out["multiclass"].shape).astype(np.float32)
    return out


def test_a_faithful_split_detector_holds_judged_as_one_box_list() -> None:
    fp32 = _split()
    kinds = infer_output_kinds(fp32)
    report = measure_drift(fp32, _requantized(fp32), kinds, DriftBudget())
    assert not report.violations, [v.line() for v in report.violations]
    boxes = report.outputs["boxes"]
    assert boxes["kind"] == "box_list"
    assert boxes["boxes_fp32"] == SAMPLES * DETECTIONS and boxes["box_agreement"] == 1.0
    assert boxes["shape"] == [SAMPLES, ROWS, 4]
    notes = kind_notes(report.outputs)
    said = [note for note in notes if "judged together as one box list" in note]
    assert len(said) == 1, notes  # said once
    assert "'boxes', 'scores', 'classes' judged together as one box list (boxes, scores, classes)" in said[0]
    for name in ("anchors", "multiclass", "count"):
        assert name in said[0]
        assert "box_agreement" not in report.outputs[name] and "cosine_mean" not in report.outputs[name]
        assert report.outputs[name]["judged_with"] == "boxes"
    assert not any("nearest held-out row" in note for note in notes)
    copied = pickle.loads(pickle.dumps(copy.deepcopy(report.outputs)))  # the manifest copies its records
    assert copied["boxes"]["kind"] == "box_list" and json.dumps(copied["boxes"]["kind"]) == '"box_list"'


def test_a_box_moved_far_is_refused() -> None:
    fp32 = _split()
    int8 = _requantized(fp32)
    int8["boxes"][:12, 0] += np.float32(0.5)  # the best hand of half the samples moved half the image down
    report = measure_drift(fp32, int8, infer_output_kinds(fp32), DriftBudget())
    assert [v.metric for v in report.violations if v.output == "boxes"][:1] == ["box_agreement"]


def test_typed_box_list_on_the_boxes_pairs_with_the_scores() -> None:
    fp32 = _split()
    kinds = infer_output_kinds(fp32, {"boxes": "box_list"})
    assert kinds["boxes"] == "box_list"
    assert not measure_drift(fp32, _requantized(fp32), kinds, DriftBudget()).violations
    alone = {name: values for name, values in fp32.items() if name != "scores"}
    with pytest.raises(QuantserveError, match=r"--output-kind boxes=box_list: output 'boxes' .* is no box list"):
        infer_output_kinds(alone, {"boxes": "box_list"})


def test_evaluate_headline_scores_the_boxes() -> None:
    fp32 = _split()
    assert headline_output(fp32, None, None) == "boxes"


def test_evaluate_judges_the_served_outputs_as_one_box_list() -> None:
    from loadtest.accuracy_results import VariantAccuracy
    from loadtest.evaluator import judge_variants

    fp32 = _split()
    variants = [VariantAccuracy(model, SAMPLES, 0.0, 0.0) for model in ("fp32", "int8")]
    judge_variants(variants, {"fp32": fp32, "int8": _requantized(fp32)}, "fp32", DriftBudget(), {}, None)
    assert variants[1].violations == []
    assert variants[1].drift["boxes"]["box_agreement"] == 1.0
    assert sum("judged together as one box list" in note for note in variants[1].notes) == 1


def test_a_gate_on_a_member_is_refused_not_dropped() -> None:
    """--gate on an output judged through a split box list had been dropped without a word (session 66 review)."""
    fp32 = _split()
    budget = DriftBudget(gates=(("anchors", "scores"),))
    with pytest.raises(QuantserveError, match=r"--gate anchors=…: outputs .* judged together as one box list"):
        measure_drift(fp32, _requantized(fp32), infer_output_kinds(fp32), budget)
