"""Served evaluate reads real tokens as the build was told (session 57): `optimize --length-input NAME|none` is
recorded in the build's manifest, `deploy` writes it into the served config (`serving.length_parameter`), and
evaluate follows it for that model unless its own `--length-input` is given (the flag wins, with a note naming both).
Before, evaluate of a deployed build inferred the length input afresh: a tagger built with `--length-input n_chars`
was judged on its `max_len` decode limit's positions, whose pads diluted the changed tags below the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest.accuracy_results import VariantAccuracy
from loadtest.served_graph import told_length_input
from optimizer.drift_budget import DriftBudget
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.token_lengths import LENGTH_INPUT
from quantserve.artifact import Manifest
from quantserve.data import TensorData
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.length_parameter import LENGTH_PARAMETER, length_parameter, recorded_length
from serving.model_config import parse_config

N, T, C = 200, 20, 7


def _told(name: str | None) -> dict[str, Any]:
    """A served config (Triton's JSON) whose deploy recorded the build's --length-input `name` (None: none)."""
    return {"parameters": {k: {"string_value": v} for k, v in length_parameter(name).items()}}


def _projection(path: Path) -> Path:
    """x (N, 16) -> y = x·W (N, 8)."""
    weights = numpy_helper.from_array(np.random.default_rng(4).normal(0, 1, (16, 8)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_deploy_writes_the_builds_length_input_into_the_served_config(tmp_path: Path) -> None:
    model = _projection(tmp_path / "m.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(1).normal(0, 1, (300, 16)).astype(np.float32))
    out = tmp_path / "build"
    untimed = SpeedSettings(enabled=False)
    optimize(
        OptimizeOptions(model, tmp_path / "calib.npz", "fp32", "embedded", out, speed=untimed, length_input="none")
    )
    assert Manifest.load(out).extra[LENGTH_INPUT] == "none"
    assert recorded_length(parse_config(deploy(out, tmp_path / "repo", "m").config_path)) == "none"
    manifest = Manifest.load(out)  # a build told a name: the name is recorded as it was typed
    manifest.extra[LENGTH_INPUT] = "n_chars"
    manifest.save(out)
    assert recorded_length(parse_config(deploy(out, tmp_path / "repo", "m").config_path)) == "n_chars"
    del manifest.extra[LENGTH_INPUT]  # inferred at optimize: nothing recorded, and the next deploy's config says so
    manifest.save(out)
    config = parse_config(deploy(out, tmp_path / "repo", "m").config_path)
    assert recorded_length(config) is None and LENGTH_PARAMETER not in (config.get("parameters") or {})


def test_recorded_length_reads_back_none_where_absent_or_empty() -> None:
    assert recorded_length(_told("n_chars")) == "n_chars" and recorded_length(_told("none")) == "none"
    assert length_parameter(None) == {} and length_parameter("") == {} and length_parameter(["n"]) == {}
    assert recorded_length({}) is None  # an older deploy
    assert recorded_length({"parameters": {LENGTH_PARAMETER: {"string_value": ""}}}) is None


def _tagger() -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """A tagger's rows (`max_len` a decode limit past the real tokens, `n_chars` their count) and its FP32 and INT8
    emissions: 3 % of the real tokens' tags changed, every pad the same."""
    rng = np.random.default_rng(57)
    n_chars = rng.integers(3, 8, N).astype(np.int64)
    real = np.arange(T)[None, :] < n_chars[:, None]
    ids = np.where(real, rng.integers(0, 30, (N, T)), 0).astype(np.int64)
    inputs = {"token_ids": ids, "max_len": np.minimum(2 * n_chars, T).astype(np.int64), "n_chars": n_chars}
    emissions = (rng.standard_normal((N, T, C)) * 3).astype(np.float32)
    broken = emissions.copy()
    spots = np.argwhere(real)
    for n, t in spots[rng.choice(len(spots), int(0.03 * len(spots)), replace=False)]:
        broken[n, t] = np.roll(broken[n, t], 1)
    return inputs, real, {"fp32": {"emissions": emissions}, "int8": {"emissions": broken}}


def _evaluated(
    monkeypatch: pytest.MonkeyPatch, configs: dict[str, dict[str, Any]], typed: str | None = None
) -> VariantAccuracy:
    import loadtest.evaluator as evaluator

    inputs, _, answers = _tagger()
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: configs[model])
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: answers[model])
    budget = DriftBudget(min_top1_agreement=0.98)
    report = evaluator.evaluate_accuracy(
        "127.0.0.1:1", ["int8"], "fp32", TensorData(inputs), budget=budget, length_input=typed
    )
    return {v.model: v for v in report.variants}["int8"]


def test_evaluate_reads_real_tokens_as_the_deployed_build_was_told(monkeypatch: pytest.MonkeyPatch) -> None:
    _, real, _ = _tagger()
    told = _evaluated(monkeypatch, {"fp32": {}, "int8": _told("n_chars")})
    assert told.drift is not None and told.drift["emissions"]["tokens_judged"] == int(real.sum())
    assert told.violations  # 3 % of the real tokens' tags changed: beyond the 0.98 budget
    assert any("as model 'int8' was built (optimize --length-input n_chars)" in note for note in told.notes)
    unrecorded = _evaluated(monkeypatch, {"fp32": {}, "int8": {}})  # deployed by an older quantserve: inferred
    assert unrecorded.drift is not None and unrecorded.drift["emissions"]["tokens_judged"] > int(real.sum())
    assert not unrecorded.violations and not any("was built" in note for note in unrecorded.notes)


def test_evaluates_own_length_input_wins_over_the_builds_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    judged = _evaluated(monkeypatch, {"fp32": {}, "int8": _told("n_chars")}, "max_len")
    assert not judged.violations  # max_len's positions, as the flag said
    assert "--length-input max_len read each row's real tokens; model 'int8' was built with --length-input n_chars" in (
        judged.notes
    )
    same = _evaluated(monkeypatch, {"fp32": {}, "int8": _told("n_chars")}, "n_chars")
    assert same.violations and not any("was built" in note for note in same.notes)  # no difference, no note


def test_builds_told_different_length_inputs_are_one_line() -> None:
    inputs, _, _ = _tagger()
    configs = {"fp32": _told("n_chars"), "int8": {}, "int8b": _told("none")}
    with pytest.raises(QuantserveError) as raised:
        told_length_input(configs, None, inputs)
    assert str(raised.value) == (
        "model 'fp32' was built with --length-input n_chars, model 'int8b' with --length-input none: pass "
        "--length-input NAME (OUTPUT=NAME[,OUTPUT=NAME…] for an output's own) or none to say which input counts "
        "each row's real tokens"
    )
    assert told_length_input(configs, "none", inputs) == (  # the flag settles it, naming the builds it overrode
        "none",
        ["--length-input none read each row's real tokens; model 'fp32' was built with --length-input n_chars"],
    )
    both = {"fp32": _told("n_chars"), "int8": _told("n_chars")}
    assert told_length_input(both, "max_len", inputs)[1] == [
        "--length-input max_len read each row's real tokens; models 'fp32', 'int8' were built with --length-input "
        "n_chars"
    ]
    choice, notes = told_length_input({"fp32": _told("n_chars"), "int8": _told("n_chars"), "x": None}, None, inputs)
    assert choice == "n_chars" and notes == [
        "real tokens read as models 'fp32', 'int8' were built (optimize --length-input n_chars); --length-input "
        "NAME|none otherwise"
    ]


def test_a_builds_length_input_the_data_cannot_hold_is_one_line_naming_the_flag() -> None:
    inputs, _, _ = _tagger()
    with pytest.raises(QuantserveError) as raised:
        told_length_input({"int8": _told("speaker")}, None, inputs)
    assert str(raised.value) == (
        "--length-input speaker: no input 'speaker' (inputs: token_ids, max_len, n_chars), as model 'int8' was built: "
        "pass --length-input NAME or none to read them otherwise"
    )


def test_evaluates_help_says_its_default_is_the_builds_word(capsys: pytest.CaptureFixture[str]) -> None:
    from quantserve.cli import main

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "as the models' builds were told at optimize" in " ".join(capsys.readouterr().out.split())
