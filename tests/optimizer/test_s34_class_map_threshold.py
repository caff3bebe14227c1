"""A class map used at a threshold is judged at it: MTCNN keeps PNet's windows whose face probability reaches 0.6.

Session 33 judged PNet's (N, 2, H, W) face map at its argmax only: an INT8 build flipped 7 % of the windows over
MTCNN's 0.6 cut, unseen, since the argmax (a cut at 0.5) barely moved. With --label-threshold T given, a class map's
answer at a position is the class whose probability reaches T there, else "unsure", and those answers are judged.
"""

from __future__ import annotations

import numpy as np

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.mask_metrics import UNSURE, sure_answers

RNG = np.random.default_rng(34)


def _face_map(logit: np.ndarray) -> np.ndarray:
    """(N, 2, H, W) softmax over a not-face/face pair of logits, as PNet answers (face probability sigmoid(2 l))."""
    pair = np.stack([-logit, logit], axis=1)
    exp = np.exp(pair - pair.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _maps() -> tuple[np.ndarray, np.ndarray]:
    """FP32's map, and a build that lowered its sure faces' confidence: none crosses 0.5, many cross 0.6."""
    logit = RNG.normal(0, 1.5, size=(64, 24, 24)) + np.linspace(-3, 3, 24)
    lowered = np.where(logit > 0.15, logit - 0.1, logit)
    return _face_map(logit), _face_map(lowered)


def test_a_class_map_judged_at_its_argmax_without_a_threshold_holds() -> None:
    reference, candidate = _maps()
    report = measure_drift({"prob": reference}, {"prob": candidate}, {"prob": "class_map"}, DriftBudget())
    record = report.outputs["prob"]
    assert report.holds, report.violations
    assert record["value_agreement"] == 1.0 and "label_threshold" not in record


def test_a_class_map_used_at_a_threshold_is_judged_there() -> None:
    reference, candidate = _maps()
    budget = DriftBudget(label_threshold=0.6)
    report = measure_drift({"prob": reference}, {"prob": candidate}, {"prob": "class_map"}, budget)
    record = report.outputs["prob"]
    assert record["label_threshold"] == 0.6 and 0.95 < record["value_agreement"] < 0.99
    assert [v.line("class_map") for v in report.violations] == [
        "output 'prob' (class_map): share of values unchanged (at --label-threshold 0.6, unsure where no class reaches"
        f" it) {record['value_agreement']:.4g} < budget 0.99"
    ]
    assert record["classes_judged"] == 2  # faces and not-faces: the unsure band is no class


def test_sure_answers_read_unsure_where_no_class_reaches_the_threshold() -> None:
    scores = np.array([[[0.7, 0.3], [0.45, 0.55], [0.2, 0.8]]])
    assert sure_answers(scores, 0.6).tolist() == [[0, UNSURE, 1]]
    assert sure_answers(np.log(scores), 0.6).tolist() == [[0, UNSURE, 1]]  # logits: softmaxed first
    assert sure_answers(np.zeros((0, 3, 2)), 0.6).shape == (0, 3)
