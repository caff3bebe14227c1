"""evaluate judges an output as its build was told: g2p-id's LSTM encoder (session 41), shipped with `optimize
--output-kind lstm_1=embedding` (its cell state, whose argmax means nothing), deployed and served, was failed by
evaluate at "'lstm_1' (classification) top-1 0.9888", the kind read afresh off the values. The build records the
typed kinds in its manifest, deploy in the served config, and evaluate takes them unless its own flag says otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest.accuracy_results import VariantAccuracy
from loadtest.served_graph import told_kinds
from optimizer.drift_budget import DriftBudget
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import TYPED_KINDS, Manifest
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.kinds_parameter import KINDS_PARAMETER, kinds_parameter, recorded_kinds
from serving.model_config import parse_config

UNTIMED = SpeedSettings(enabled=False)


def _told(kinds: dict[str, str]) -> dict[str, Any]:
    """A served config (Triton's JSON) whose deploy recorded the build's typed `kinds`."""
    return {"parameters": {k: {"string_value": v} for k, v in kinds_parameter(kinds).items()}}


def _projection(path: Path) -> Path:
    """x (N, 16) -> state = x·W (N, 64)."""
    weights = numpy_helper.from_array(np.random.default_rng(4).normal(0, 1, (16, 64)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["state"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("state", TensorProto.FLOAT, ["N", 64])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_optimize_records_the_typed_kinds_and_deploy_writes_them_into_the_served_config(tmp_path: Path) -> None:
    model = _projection(tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).normal(0, 1, (300, 16)).astype(np.float32))
    out = tmp_path / "build"
    kinds = {"state": "embedding"}
    options = OptimizeOptions(model, tmp_path / "calib.npz", "fp32", "embedded", out, speed=UNTIMED, output_kinds=kinds)
    optimize(options)
    assert Manifest.load(out).extra[TYPED_KINDS] == {"state": "embedding"}
    deployed = deploy(out, tmp_path / "repo", "m")
    assert recorded_kinds(parse_config(deployed.config_path)) == {"state": "embedding"}


def test_recorded_kinds_read_back_none_where_absent_or_garbled() -> None:
    assert recorded_kinds(_told({"lstm_1": "embedding"})) == {"lstm_1": "embedding"}
    assert kinds_parameter({}) == {} and kinds_parameter({"lstm_1": "logits"}) == {}  # none; no kind of quantserve
    assert recorded_kinds({}) == {}  # an older deploy
    assert recorded_kinds({"parameters": {KINDS_PARAMETER: {"string_value": "{"}}}) == {}


def _peaked_state() -> tuple[np.ndarray, np.ndarray]:
    """(400, 256) signed rows whose softmax commits to one of two close units (values alone read class logits), and
    a build's with noise that moves the argmax on a few percent of the rows at a cosine of 0.999 or more."""
    rng = np.random.default_rng(41)
    rows = rng.normal(0.0, 1.0, (400, 256))
    first, second = rng.integers(0, 128, 400), rng.integers(128, 256, 400)
    rows[np.arange(400), first] = 10.0
    rows[np.arange(400), second] = 10.0 - rng.uniform(0.0, 2.0, 400)
    got = rows + rng.normal(0.0, 0.1, rows.shape)
    assert 0.01 < np.mean(rows.argmax(axis=1) != got.argmax(axis=1)) < 0.1
    return rows.astype(np.float32), got.astype(np.float32)


def _evaluated(
    monkeypatch: pytest.MonkeyPatch, configs: dict[str, dict[str, Any]], typed: dict[str, str] | None = None
) -> VariantAccuracy:
    import loadtest.evaluator as evaluator

    state, got = _peaked_state()
    answers = {"fp32": {"lstm_1": state}, "int8": {"lstm_1": got}}
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: configs[model])
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: answers[model])
    data = TensorData({"x": np.zeros((400, 16), np.float32)})
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget(), output_kinds=typed
    )
    return {v.model: v for v in report.variants}["int8"]


def test_evaluate_judges_an_output_as_its_build_was_told(monkeypatch: pytest.MonkeyPatch) -> None:
    told = _evaluated(monkeypatch, {"fp32": {}, "int8": _told({"lstm_1": "embedding"})})
    assert told.drift is not None and told.drift["lstm_1"]["kind"] == "embedding"
    assert told.violations == []
    assert any("as model 'int8' was built (optimize --output-kind lstm_1=embedding)" in n for n in told.notes)
    unrecorded = _evaluated(monkeypatch, {"fp32": {}, "int8": {}})  # deployed by an older quantserve: as before
    assert unrecorded.drift is not None and unrecorded.drift["lstm_1"]["kind"] == "classification"
    assert any("output 'lstm_1' (classification): top-1 agreement" in line for line in unrecorded.violations)


def test_evaluates_own_output_kind_wins_over_the_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    configs = {"fp32": {}, "int8": _told({"lstm_1": "embedding"})}
    judged = _evaluated(monkeypatch, configs, {"lstm_1": "classification"})
    assert judged.drift is not None and judged.drift["lstm_1"]["kind"] == "classification"
    assert judged.violations and not any("was built" in note for note in judged.notes)


def test_builds_told_different_kinds_for_one_output_are_one_line() -> None:
    configs = {"a": _told({"out": "embedding"}), "b": _told({"out": "dense", "gone": "dense"})}
    with pytest.raises(QuantserveError) as raised:
        told_kinds(configs, None, ["out", "gone"])
    assert str(raised.value) == (
        "model 'a' was built judging output 'out' as embedding, model 'b' as dense: pass --output-kind out=KIND to "
        "say how evaluate judges it"
    )
    kinds, notes = told_kinds({"a": _told({"out": "embedding", "gone": "dense"}), "b": None}, None, ["out"])
    assert kinds == {"out": "embedding"} and len(notes) == 1  # an output the models no longer answer: left out
    assert json.loads(kinds_parameter({"out": "embedding"})[KINDS_PARAMETER]) == {"out": "embedding"}
