"""A raw yes/no logit, one per sample, is judged by its decisions at --label-threshold's logit (0 for 0.5), as the
same flag after its sigmoid is (`optimizer.decision_metrics.is_flag_logit`).

Probe 68: MediaPipe's face mesh answers a face flag before its sigmoid, (N, 1), values -12..+9; judged by correlation
alone, 4 of 320 held-out rows near 0 flipped sign in INT8 and nothing reported it. Here a tiny ONNX model answers such
a logit and a candidate (its bias moved by 0.3, as INT8's offset moves it) flips 4 of its 320 decisions, verified by
the pipeline's own `VerifyAgainstReference`; a standardized regression centred on 0 is not read as a flag.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer import decision_metrics
from optimizer.verify import VerifyAgainstReference, drift_refusal
from quantserve.data import TensorData

FLIPPED = 4


def _linear(path: Path, name: str, bias: float) -> Path:
    """x (N, 3) → `name` (N, 1) = x · [1, 0.5, -0.5] + `bias`: a head's last layer, before any sigmoid."""
    weight = np.array([[1.0], [0.5], [-0.5]], dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["z"]), helper.make_node("Add", ["z", "b"], [name])],
        "head",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array([bias], np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _rows(first: np.ndarray) -> TensorData:
    """Inputs whose FP32 output is `first` (the other two columns cancel)."""
    other = np.random.default_rng(3).normal(0.0, 1.0, len(first))
    return TensorData({"x": np.stack([first, other, other], axis=1).astype(np.float32)})


def _face_logits() -> np.ndarray:
    """320 logits like the face flag's: 200 faces at +3..+9, 116 none at -12..-3, 4 uncommitted just below 0."""
    rng = np.random.default_rng(0)
    near = np.array([-0.25, -0.2, -0.15, -0.1])
    return np.concatenate([rng.uniform(3.0, 9.0, 200), rng.uniform(-12.0, -3.0, 316 - 200), near])


def _verify(tmp_path: Path, name: str, first: np.ndarray, shift: float, kinds: dict[str, str] | None = None) -> dict:
    reference = _linear(tmp_path / "fp32.onnx", name, 0.0)
    candidate = _linear(tmp_path / "int8.onnx", name, shift)
    return VerifyAgainstReference(reference, _rows(first), "held.npz", 32, output_kinds=kinds).measure(candidate)


def test_a_face_flag_logit_flipping_four_decisions_is_refused(tmp_path: Path) -> None:
    record = _verify(tmp_path, "face_flag", _face_logits(), 0.3)
    output = record["outputs"]["face_flag"]
    assert output["channel_correlation_worst"] > 0.999  # correlation alone saw nothing
    assert output["flag_agreement"] == (320 - FLIPPED) / 320
    assert output["flag_cut"] == 0.0 and output["label_threshold"] == 0.5
    assert output["decision_sides"][0] == {"side": "below", "threshold": 0.0, "rows": 120, "agreement": 116 / 120}
    assert not record["holds"]
    line = str(drift_refusal(record))
    assert "output 'face_flag'" in line, line
    assert "share of flag decisions unchanged (at logit 0: --label-threshold 0.5) 0.9875 < budget 0.99" in line, line
    assert "--output-kind face_flag=regression" in line, line


def test_the_named_override_judges_it_by_its_values_alone(tmp_path: Path) -> None:
    record = _verify(tmp_path, "face_flag", _face_logits(), 0.3, {"face_flag": "regression"})
    output = record["outputs"]["face_flag"]
    assert "flag_agreement" not in output and "flag_cut" not in output and "decision_sides" not in output
    assert record["holds"], record["violations"]


def test_a_faithful_face_flag_logit_holds(tmp_path: Path) -> None:
    record = _verify(tmp_path, "face_flag", _face_logits(), 0.01)
    assert record["outputs"]["face_flag"]["flag_agreement"] == 1.0
    assert record["holds"], record["violations"]


def test_a_standardized_regression_centred_on_zero_is_not_a_flag(tmp_path: Path) -> None:
    values = np.random.default_rng(5).normal(0.0, 1.0, 320)
    assert not decision_metrics.is_flag_logit(values[:, None])
    record = _verify(tmp_path, "offset", values, 0.02)  # moves the sign of the few values within 0.02 of 0
    output = record["outputs"]["offset"]
    assert "flag_agreement" not in output and "decision_sides" not in output
    assert record["holds"], record["violations"]


def test_the_rule_reads_values_not_shapes() -> None:
    logits = _face_logits()
    assert decision_metrics.is_flag_logit(logits) and decision_metrics.is_flag_logit(logits[:, None])
    assert not decision_metrics.is_flag_logit(np.abs(logits)[:, None])  # one sign only: no decision to read at 0
    assert not decision_metrics.is_flag_logit(1.0 / (1.0 + np.exp(-logits)))  # a sigmoid's: `is_flag`'s
    assert not decision_metrics.is_flag_logit(np.stack([logits, logits], axis=1))  # two values a sample
    rng = np.random.default_rng(6)
    for spread in (4.0, 10.0, 25.0):  # committed by size alone, yet filling the middle: regressions
        assert not decision_metrics.is_flag_logit(rng.normal(0.0, spread, 320))
        assert not decision_metrics.is_flag_logit(rng.uniform(-spread * 1.7, spread * 1.7, 320))
