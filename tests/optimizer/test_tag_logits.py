"""Raw multi-label logits are a tagger's, judged by their label sets at logit 0, not an embedding judged by cosine:
YAMNet's (N, 521) tag logits (off classes at -13 median, down to -434) were read as an embedding, whose whole-row
cosine the far-off classes dominate; an INT8 variant held cosine 0.9991 / 0.9939 at top-1 agreement 0.867 and tag
F1 0.92. Zero-centred embeddings, a softmax classifier's logits, ReLU features and coordinates keep their kinds."""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_output_kinds
from optimizer.row_kinds import peaked_softmax, tag_logits

ROWS, CLASSES = 400, 200


def _tag_logits(seed: int = 0) -> np.ndarray:
    """Most classes at about -10 ± 3, one to three scattered classes per row near +2 (the tags), most rows with two
    or three: the softmax of the median row commits to none (a tagger whose softmax commits reads as classification,
    judged by top-1 agreement)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(-10.0, 3.0, size=(ROWS, CLASSES))
    for row in range(ROWS):
        tags = rng.choice(CLASSES // 4, size=rng.choice(3, p=(0.2, 0.3, 0.5)) + 1, replace=False) * 4  # apart
        logits[row, tags] = rng.normal(2.0, 0.2, size=len(tags))
    return logits.astype(np.float32)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


def test_raw_tag_logits_are_judged_by_their_label_sets_at_logit_0() -> None:
    reference = _tag_logits()
    assert not peaked_softmax(reference.astype(np.float64))
    assert infer_output_kinds({"tags": reference}) == {"tags": "multilabel"}
    drifted = reference + np.random.default_rng(1).normal(0.0, 0.05, size=reference.shape).astype(np.float32)
    dropped = np.arange(0, ROWS, 10)  # a tenth of the rows lose their strongest tag at logit 0
    drifted[dropped, reference[dropped].argmax(axis=1)] = -0.5
    cosines = _cosines(reference, drifted)
    assert cosines.mean() >= 0.995 and cosines.min() >= 0.995  # what passed it as an embedding
    assert measure_drift({"tags": reference}, {"tags": drifted}, {"tags": "embedding"}, DriftBudget()).holds
    report = measure_drift({"tags": reference}, {"tags": drifted}, {}, DriftBudget())
    record = report.outputs["tags"]
    assert record["kind"] == "multilabel" and record["label_logits"] and record["label_cut"] == 0.0
    assert record["label_set_agreement"] == 0.9
    assert [violation.line("multilabel") for violation in report.violations] == [
        f"output 'tags' (multilabel): label-set agreement (at logit 0: --label-threshold 0.5; {record['label_ties']} "
        "decisions within 0.02 of it left out) 0.9 < budget 0.99 "
        "(read as raw multi-label logits, a class on at logit 0: if they are features, pass --output-kind "
        "tags=embedding; if values in a unit (a forecast), --output-kind tags=dense; each of its 200 labels holds on "
        "its own (worst 0.9950, label 0): if they are independent tasks rather than one label set, judge them each "
        "with --output-kind tags=multitask)"  # its lost tags spread over its 200 (`optimizer.task_outputs`)
    ]
    named = measure_drift({"tags": reference}, {"tags": drifted}, {"tags": "multilabel"}, DriftBudget())
    assert named.outputs["tags"]["label_set_agreement"] == 0.9  # judged as a named multilabel output is


def test_embeddings_classifiers_features_and_coordinates_keep_their_kinds() -> None:
    rng = np.random.default_rng(2)
    committing = rng.normal(-10.0, 3.0, size=(ROWS, CLASSES))
    committing[np.arange(ROWS), rng.integers(0, CLASSES, size=ROWS)] = 6.0  # the softmax commits to one class
    second = np.arange(0, ROWS, 3)
    committing[second, rng.integers(0, CLASSES, size=len(second))] = 1.0  # a third of the rows: another above 0
    sentence = rng.normal(0.0, 1.0, size=(ROWS, 384))
    layout = rng.uniform(-1.0, 1.0, size=(1, 136))  # 68 landmarks in normalised image coordinates
    outputs = {
        "sentence": sentence,
        "unnormalised": 3.0 * sentence,
        "unit": sentence / np.linalg.norm(sentence, axis=1, keepdims=True),
        "logits": committing,
        "relu": np.maximum(rng.normal(-1.0, 2.0, size=(ROWS, 512)), 0.0),
        "landmarks": layout + rng.normal(0.0, 0.02, size=(ROWS, 136)),
    }
    assert infer_output_kinds({name: values.astype(np.float32) for name, values in outputs.items()}) == {
        "sentence": "embedding",
        "unnormalised": "embedding",
        "unit": "embedding",
        "logits": "classification",
        "relu": "embedding",
        "landmarks": "dense",
    }
    # far below and above 0 their sigmoid is half plainly off, half on and scattered: half of a row at 0 or above
    assert not any(tag_logits(scale * sentence[:16]) for scale in (10.0, 100.0, 1000.0))
