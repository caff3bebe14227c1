"""evaluate reads a deployed build's outputs at the --label-threshold it was built with (`optimize --label-threshold
T`), gated or not: optimize records a given threshold in the manifest's verification, deploy in the served config
(`serving.gates_parameter`), and evaluate takes it where its own is not given (`loadtest.evaluator_gates`). Before,
it was carried only beside --gate: a build given --label-threshold alone was evaluated at the default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pitch_model import FRAMES, pitch_model

from loadtest.evaluator_gates import told_gates
from optimizer.drift_budget import DriftBudget, UnsetThreshold
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.deploy_config import model_parameters
from serving.gates_parameter import recorded_gates, recorded_label_threshold
from serving.model_config import parse_config

ROWS = 300


def _deployed(tmp_path: Path, budget: DriftBudget) -> dict[str, Any]:
    """The served config (Triton's JSON, parsed back from config.pbtxt) of an FP32 build optimized under `budget`."""
    model = pitch_model(tmp_path / "pitch.onnx")
    x = np.random.default_rng(1).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", input=x)
    out = tmp_path / "build"
    untimed = SpeedSettings(enabled=False)
    optimize(OptimizeOptions(model, tmp_path / "calib.npz", "fp32", "embedded", out, speed=untimed, budget=budget))
    return parse_config(deploy(out, tmp_path / "repo", "pitch").config_path)


def _config(verification: dict[str, Any]) -> dict[str, Any]:
    spec = [TensorSpec("input", "FP32", (-1, FRAMES))]
    manifest = Manifest("pitch", spec, [], precision="int8", verification=verification)
    return {"parameters": {k: {"string_value": v} for k, v in model_parameters(manifest, None).items()}}


def _given(threshold: float, gates: dict[str, str] | None = None) -> dict[str, Any]:
    """A manifest's verification of a build given --label-threshold `threshold` (and `gates`)."""
    return {
        "budget": {"label_threshold": threshold},
        "label_threshold": threshold,
        **({"gates": gates} if gates else {}),
    }


def test_a_label_threshold_given_without_a_gate_is_recorded_and_deployed(tmp_path: Path) -> None:
    config = _deployed(tmp_path, DriftBudget(label_threshold=0.3))
    assert Manifest.load(tmp_path / "build").verification["label_threshold"] == 0.3  # type: ignore[index]
    assert recorded_label_threshold(config) == 0.3
    assert recorded_gates(config) == ((), None)


def test_a_build_given_no_label_threshold_records_none(tmp_path: Path) -> None:
    config = _deployed(tmp_path, DriftBudget())
    assert "label_threshold" not in Manifest.load(tmp_path / "build").verification  # type: ignore[operator]
    assert recorded_label_threshold(config) is None


def test_evaluate_without_its_own_takes_the_builds_label_threshold_and_says_so_once() -> None:
    configs = {"m@1": None, "m@2": _config(_given(0.3))}
    budget, notes = told_gates(configs, DriftBudget(), ["value", "confidence"])
    assert budget.label_threshold == 0.3 and not isinstance(budget.label_threshold, UnsetThreshold)
    assert notes == [
        "outputs read at --label-threshold 0.3, as model 'm@2' was built with; --label-threshold X reads otherwise"
    ]


def test_the_builds_gates_are_read_at_its_label_threshold() -> None:
    configs = {"m@2": _config(_given(0.3, {"value": "confidence"}))}
    budget, notes = told_gates(configs, DriftBudget(), ["value", "confidence"])
    assert budget.gates == (("value", "confidence"),) and budget.label_threshold == 0.3
    assert len(notes) == 2 and "output 'value' only where FP32's 'confidence' ≥ 0.3" in notes[1]
    assert "pass it to judge them there" not in notes[1]


def test_evaluates_own_label_threshold_wins_and_names_the_build() -> None:
    given = DriftBudget(label_threshold=0.5)
    budget, notes = told_gates({"m@2": _config(_given(0.3))}, given, ["value"])
    assert budget is given
    assert notes == ["--label-threshold 0.5 read the outputs; model 'm@2' was built with --label-threshold 0.3"]


def test_builds_given_different_label_thresholds_are_one_line() -> None:
    configs = {"a": _config(_given(0.3)), "b": _config(_given(0.4))}
    with pytest.raises(QuantserveError) as raised:
        told_gates(configs, DriftBudget(), ["value"])
    assert str(raised.value) == (
        "model 'a' was built with --label-threshold 0.3, model 'b' with --label-threshold 0.4: pass "
        "--label-threshold to say where evaluate reads the outputs"
    )


def test_evaluate_reads_a_deployed_build_at_its_label_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """evaluate's accuracy pass over the served reference 'm@1' and the deployed build 'm@2', no server: the
    build's probability's decisions are read at 0.3, as it was built."""
    import loadtest.evaluator as evaluator

    x = np.random.default_rng(0).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    fp32 = {"confidence": 1 / (1 + np.exp(-4 * x))}
    answers = {"m@1": fp32, "m@2": {"confidence": fp32["confidence"] * 0.999}}
    configs = {"m": _config(_given(0.3))}  # both versions of one model: one config
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: configs[model])
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: answers[model])
    data = TensorData({"input": np.zeros((ROWS, FRAMES), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["m@2"], "m@1", data, output="confidence", budget=DriftBudget())
    variant = {v.model: v for v in report.variants}["m@2"]
    assert variant.drift is not None and variant.drift["confidence"].get("label_threshold") == 0.3
    note = "outputs read at --label-threshold 0.3, as models 'm@1', 'm@2' were built with; --label-threshold X reads"
    assert sum(n.startswith(note) for n in variant.notes) == 1
