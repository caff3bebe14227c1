"""evaluate judges a deployed build's outputs under the gates it was built with (`optimize --gate NAME=BY`): optimize
records them in the manifest's verification, deploy in the served config (`serving.gates_parameter`), and evaluate
takes them where its own --gate is not given (`loadtest.evaluator_gates.told_gates`). Before, evaluate without
--gate judged a swift-f0-like pitch over every frame and failed a build optimize had shipped under its gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pitch_model import FRAMES, pitch_model

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from loadtest.evaluator_gates import told_gates
from optimizer.drift_budget import DriftBudget
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.verify import VerifyAgainstReference
from quantserve.artifact import Manifest, TensorSpec
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.deploy_config import model_parameters
from serving.gates_parameter import recorded_gates
from serving.model_config import parse_config

ROWS = 300
GATED = DriftBudget(gates=(("value", "confidence"),))


def _verification(tmp_path: Path, budget: DriftBudget) -> dict[str, Any]:
    x = np.random.default_rng(0).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    model = pitch_model(tmp_path / "pitch.onnx")
    return VerifyAgainstReference(model, TensorData({"input": x}), "held_out.npz", budget=budget).measure(model)


def _served_config(verification: dict[str, Any] | None) -> dict[str, Any]:
    """The served config (Triton's JSON) deploy writes for a build with this verification record."""
    spec = [TensorSpec("input", "FP32", (-1, FRAMES))]
    manifest = Manifest("pitch", spec, [], precision="int8", verification=verification)
    return {"parameters": {k: {"string_value": v} for k, v in model_parameters(manifest, None).items()}}


def _served() -> dict[str, dict[str, np.ndarray]]:
    """The reference's pitch-like `value` and its `confidence`; the variant's `value` wild where unconfident."""
    x = np.random.default_rng(0).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    fp32 = {"value": 100 * x + 200, "confidence": 1 / (1 + np.exp(-4 * x))}
    return {"m@1": fp32, "m@2": dict(fp32, value=fp32["value"] + 3000 * np.maximum(-x, 0) ** 2)}


def test_optimize_records_its_gates_and_deploy_writes_them_into_the_served_config(tmp_path: Path) -> None:
    config = _served_config(_verification(tmp_path, GATED))
    assert recorded_gates(config) == ((("value", "confidence"),), 0.5)


def test_an_optimized_build_deployed_carries_its_gates_in_config_pbtxt(tmp_path: Path) -> None:
    model = pitch_model(tmp_path / "pitch.onnx")
    x = np.random.default_rng(1).normal(0.0, 1.0, (ROWS, FRAMES)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", input=x)
    out = tmp_path / "build"
    untimed = SpeedSettings(enabled=False)
    optimize(OptimizeOptions(model, tmp_path / "calib.npz", "fp32", "embedded", out, speed=untimed, budget=GATED))
    assert Manifest.load(out).verification["gates"] == {"value": "confidence"}  # type: ignore[index]
    deployed = deploy(out, tmp_path / "repo", "pitch")
    assert recorded_gates(parse_config(deployed.config_path)) == ((("value", "confidence"),), 0.5)


def test_a_build_without_gates_records_none(tmp_path: Path) -> None:
    config = _served_config(_verification(tmp_path, DriftBudget()))
    assert recorded_gates(config) == ((), None)
    assert recorded_gates({"parameters": {"quantserve_gates": {"string_value": "{not json"}}}) == ((), None)


def _evaluated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, budget: DriftBudget) -> VariantAccuracy:
    """evaluate's accuracy pass over the served reference 'm@1' and the deployed gated build 'm@2', no server."""
    import loadtest.evaluator as evaluator

    configs = {"m": _served_config(_verification(tmp_path, GATED))}  # both versions of one model: one config
    answers = _served()
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: configs[model])
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: answers[model])
    data = TensorData({"input": np.zeros((ROWS, FRAMES), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["m@2"], "m@1", data, output="value", budget=budget)
    return {v.model: v for v in report.variants}["m@2"]


def test_evaluate_without_gate_judges_the_deployed_build_under_its_recorded_gates(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    variant = _evaluated(monkeypatch, tmp_path, DriftBudget())
    assert not variant.violations  # over every frame, 'value' misses (test_s59_gate_flag_evaluate)
    assert variant.drift is not None and "'confidence' ≥ 0.5" in variant.drift["value"]["judged_at"]
    assert (
        variant.notes.count(
            "outputs judged under the gates models 'm@1', 'm@2' were built with (optimize --gate value=confidence): "
            "output 'value' only where FP32's 'confidence' ≥ 0.5; --gate NAME=BY judges otherwise"
        )
        == 1
    )


def test_the_builds_gates_reach_judge_variants(tmp_path: Path) -> None:
    configs = {"m@1": None, "m@2": _served_config(_verification(tmp_path, GATED))}
    budget, notes = told_gates(configs, DriftBudget(), ["value", "confidence"])
    assert budget.gates == (("value", "confidence"),) and len(notes) == 1
    variants = [VariantAccuracy("m@1", ROWS), VariantAccuracy("m@2", ROWS)]
    judge_variants(variants, _served(), "m@1", budget, {}, None)
    assert not variants[1].violations


def test_a_gate_on_the_command_line_wins_over_the_builds_and_says_so(tmp_path: Path) -> None:
    configs = {"m@2": _served_config(_verification(tmp_path, GATED))}
    given = DriftBudget(gates=(("confidence", "value"),))
    budget, notes = told_gates(configs, given, ["value", "confidence"])
    assert budget is given
    assert notes == ["--gate confidence=value judged the outputs; model 'm@2' was built with --gate value=confidence"]


def test_a_build_at_another_label_threshold_is_said(tmp_path: Path) -> None:
    # recorded before session 60: the threshold the gates were read at, not whether it was given (now taken where
    # given: tests/loadtest/test_s60_label_threshold_carried.py)
    verification = _verification(tmp_path, DriftBudget(gates=GATED.gates, label_threshold=0.3))
    verification.pop("label_threshold")
    configs = {"m@2": _served_config(verification)}
    budget, notes = told_gates(configs, DriftBudget(), ["value", "confidence"])
    assert budget.gates == GATED.gates
    assert notes[0].endswith("; the build read them at --label-threshold 0.3: pass it to judge them there")


def test_two_builds_gating_one_output_by_different_outputs_are_one_line(tmp_path: Path) -> None:
    other = dict(_verification(tmp_path, GATED), gates={"value": "other"})
    configs = {"a": _served_config(_verification(tmp_path, GATED)), "b": _served_config(other)}
    with pytest.raises(QuantserveError) as raised:
        told_gates(configs, DriftBudget(), ["value", "confidence", "other"])
    assert str(raised.value) == (
        "model 'a' was built with --gate value=confidence, model 'b' with --gate value=other: pass --gate NAME=BY "
        "to say where evaluate judges output 'value'"
    )
