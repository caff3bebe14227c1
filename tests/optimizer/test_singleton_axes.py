"""Outputs whose features sit on one axis behind singletons ((N, 1, 1, C), a Keras 1×1-conv head's) are judged as
(N, C): the same values give the same kind, verdict and worst feature whatever singleton axes surround them.
openWakeWord's (N, 1, 1, 96) embedding shipped in INT8 with every feature's correlation under 0.98 (worst 0.869),
its 96 features pooled into one "channel" at 0.989."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import infer_kind
from quantserve.cli import main

LAYOUTS = ((-1,), (1, 1, -1), (-1, 1, 1), (1, -1))  # the features' axis behind (N, ...): (N, C) and its variants


def _verdict(fp32: np.ndarray, int8: np.ndarray) -> tuple[str, bool, float | None, list[str]]:
    """Kind, pass/fail, worst per-feature correlation and the metrics violated, as optimize judges the output."""
    kind = infer_kind(fp32, None)
    report = measure_drift({"o": fp32}, {"o": int8}, {"o": kind}, DriftBudget())
    worst = report.outputs["o"].get("channel_correlation_worst")
    return kind, report.holds, worst, sorted(v.metric for v in report.violations)


def _rows(form: str, rng: np.random.Generator, samples: int, features: int) -> np.ndarray:
    """FP32 rows of one form: raw features of per-feature scales, peaked logits, softmax rows, unit-norm rows."""
    raw = rng.normal(size=(samples, features)) * rng.uniform(0.05, 5.0, size=features)
    if form == "logits":
        return 8.0 * rng.normal(size=(samples, features))
    if form == "softmax":
        shifted = np.exp(3.0 * raw - (3.0 * raw).max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if form == "unit":
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)
    return raw


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    form=st.sampled_from(["raw", "logits", "softmax", "unit"]),
    samples=st.integers(8, 80),
    features=st.sampled_from([2, 5, 16, 63, 64, 96, 130]),
    broken=st.integers(0, 3),
    noise=st.sampled_from([1e-4, 1e-2, 0.3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_verdict_does_not_depend_on_singleton_axes(
    form: str, samples: int, features: int, broken: int, noise: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    fp32 = _rows(form, rng, samples, features).astype(np.float32)
    int8 = fp32 + noise * fp32.std(axis=0) * rng.normal(size=fp32.shape).astype(np.float32)
    int8[:, rng.choice(features, size=min(broken, features), replace=False)] = 0.0  # features INT8 flattened
    flat = _verdict(fp32, int8)
    for layout in LAYOUTS[1:]:
        shape = (samples, *(features if size == -1 else size for size in layout))
        kind, holds, worst, violated = _verdict(fp32.reshape(shape), int8.reshape(shape))
        assert (kind, holds, violated) == (flat[0], flat[1], flat[3]), shape
        assert worst == pytest.approx(flat[2], abs=1e-12), shape


def test_a_collapsed_feature_is_named_on_the_models_own_axis() -> None:
    rng = np.random.default_rng(3)
    fp32 = (rng.normal(size=(64, 1, 1, 24)) * rng.uniform(0.1, 50.0, size=24)).astype(np.float32)
    int8 = fp32.copy()
    int8[..., 7] = 0.0
    report = measure_drift({"emb": fp32}, {"emb": int8}, {}, DriftBudget())
    record = report.outputs["emb"]
    assert record["shape"] == [64, 1, 1, 24] and record["channels"] == 24
    assert (record["channel_correlation_worst"], record["channel_worst"], record["channel_worst_axis"]) == (0.0, 7, 3)
    assert not report.holds


def _keras_head(path: Path) -> Path:
    """x (N, 8, 1, 1) → 1×1 Conv (24 features) → NHWC (N, 1, 1, 24), as tf2onnx writes a Keras head. Features 0–19
    read input channel 0 alone (a range of thousands), 20–23 channels 1–7 alone (hundredths): one INT8 scale for
    the input rounds those to nothing, while the big features, most of the output's spread, stay faithful."""
    rng = np.random.default_rng(0)
    weights = np.zeros((24, 8, 1, 1), np.float32)
    weights[:20, 0, 0, 0] = rng.uniform(0.5, 2.0, size=20)
    weights[20:, 1:, 0, 0] = rng.normal(size=(4, 7))
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["features"], name="head"),
            helper.make_node("Transpose", ["features"], ["embedding"], perm=[0, 2, 3, 1]),
        ],
        "keras_head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 1, 1])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1, 1, 24])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_optimize_refuses_an_int8_head_that_flattens_a_few_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(1)
    x = 0.01 * rng.normal(size=(200, 8, 1, 1)).astype(np.float32)
    x[:, 0] = rng.uniform(500.0, 3000.0, size=(200, 1, 1))  # the big features' argmax never moves: not class scores
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "build"
    argv = ["optimize", str(_keras_head(tmp_path / "head.onnx")), "--calib", str(tmp_path / "calib.npz")]
    assert main([*argv, "--out", str(out), "--skip-timing"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "output 'embedding' (dense): worst channel correlation 0 < budget 0.98" in lines[0], lines
    assert not out.exists()


def test_one_channel_per_position_is_a_dense_map_not_rows_of_classes() -> None:
    """MediaPipe's palm detector's (N, 2016, 1) anchor logits: background anchors sit at -1000 in every image, a few
    anchors score an object. Read as rows of 2016 "classes" they were an embedding, whose cosine the background
    holds near 1 while the scoring anchors' logits are scrambled; per anchor, those read near correlation 0."""
    rng = np.random.default_rng(5)
    fp32 = np.full((64, 200, 1), -1000.0, np.float32)
    fp32[:, :12, 0] = rng.normal(scale=4.0, size=(64, 12))  # the anchors that score something
    int8 = fp32.copy()
    int8[:, :12, 0] = rng.normal(scale=4.0, size=(64, 12))  # their scores scrambled
    assert infer_kind(fp32, None) == "dense"
    report = measure_drift({"scores": fp32}, {"scores": int8}, {}, DriftBudget())
    record = report.outputs["scores"]
    assert record["kind"] == "dense" and record["cosine_mean"] > 0.999  # what the embedding reading judged by
    assert not report.holds and record["channel_correlation_worst"] < 0.5 and record["channel_worst_axis"] == 1
