"""A kind the build's labels decided reaches served evaluate (session 61): a per-position softmax (N, T, C) whose
labels at optimize were a class id per position is judged per position (token_classification), not as CTC. evaluate
re-reads kinds off the served values with its data's labels; evaluated on the same rows without them (labels kept
apart), it read the output as `sequence` again and judged decoded-sequence agreement, another verdict than
optimize's. The build records the kinds its labels decided (verification `labels_decided`), deploy writes them beside
the typed kinds (`serving.kinds_parameter.labelled_kinds_parameter`), and evaluate takes them where its data has no
labels, with a note saying the build's labels decided; a kind typed at evaluate or at optimize keeps priority."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest import evaluator
from optimizer.drift_budget import DriftBudget
from optimizer.output_kinds import LABELS_DECIDED
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from quantserve.artifact import Manifest
from serving.deploy import deploy
from serving.kinds_parameter import kinds_parameter, recorded_labelled_kinds
from serving.model_config import parse_config

N, T, FEATURES, STAGES = 48, 30, 6, 4
RNG = np.random.default_rng(6161)
LENGTHS = RNG.integers(T // 3, T + 1, N)
PADDED = np.arange(T)[None, :] >= LENGTHS[:, None]
NOTE = "output 'stages': judged per position (token_classification) as model 'fp32' was built"


def _stager(path: Path) -> Path:
    """features (N, T, 6) -> Softmax(features · W + b) per position, stages (N, T, 4): a sleep stager in small."""
    weights = numpy_helper.from_array(RNG.normal(0, 2.5, (FEATURES, STAGES)).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.array([0.5, 0.0, 0.2, -0.3], np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "W"], ["scores"]),
            helper.make_node("Add", ["scores", "b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["stages"], axis=-1),
        ],
        "stager",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", T, FEATURES])],
        [helper.make_tensor_value_info("stages", TensorProto.FLOAT, ["N", T, STAGES])],
        [weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The stager optimized (fp32) on rows labelled a stage per position and deployed: its served config, its FP32
    answers and the rows."""
    folder = tmp_path_factory.mktemp("stager")
    model = _stager(folder / "stager.onnx")
    features = RNG.normal(0, 1, (N, T, FEATURES)).astype(np.float32)
    features[PADDED] = -1.0
    stages = np.asarray(ort.InferenceSession(str(model)).run(None, {"features": features})[0])
    labels = np.where(PADDED, -100, stages.argmax(axis=2)).astype(np.int64)
    np.savez(folder / "eval.npz", features=features, labels=labels)
    out = folder / "build"
    untimed = SpeedSettings(enabled=False)
    optimize(OptimizeOptions(model, folder / "eval.npz", "fp32", "embedded", out, speed=untimed))
    config = parse_config(deploy(out, folder / "repo", "stager").config_path)
    return {"manifest": Manifest.load(out), "config": config, "features": features, "stages": stages}


def test_optimize_records_the_kind_its_labels_decided_and_deploy_carries_it(built: dict[str, Any]) -> None:
    assert built["manifest"].verification[LABELS_DECIDED] == {"stages": "token_classification"}
    assert recorded_labelled_kinds(built["config"]) == {"stages": "token_classification"}
    assert recorded_labelled_kinds({}) == {}  # an older deploy records none


def _evaluated(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    built: dict[str, Any],
    config: dict[str, Any] | None,
    **kwargs: Any,
) -> evaluator.AccuracyReport:
    """fp32 and a build flipping every tenth real position's stage, served with `config`, evaluated on the rows
    without labels."""
    stages = built["stages"]
    flipped = (np.arange(T)[None, :] % 10 == 0) & ~PADDED
    served = {"fp32": stages, "int8": np.where(flipped[:, :, None], np.roll(stages, 1, axis=2), stages)}
    data = tmp_path / "rows.npz"
    np.savez(data, features=built["features"])  # the same rows, labels kept apart
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: config)
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kw: {"stages": served[model]})
    return evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget(), **kwargs)


def test_evaluate_without_labels_judges_it_as_the_builds_labels_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: dict[str, Any]
) -> None:
    int8 = _evaluated(tmp_path, monkeypatch, built, built["config"]).variants[1]
    assert (int8.drift or {})["stages"]["kind"] == "token_classification", "not CTC-style sequences"
    assert any(note.startswith(NOTE) and "labels" in note for note in int8.notes), int8.notes


def test_evaluate_of_a_build_recording_none_reads_it_as_a_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: dict[str, Any]
) -> None:
    int8 = _evaluated(tmp_path, monkeypatch, built, None).variants[1]
    assert (int8.drift or {})["stages"]["kind"] == "sequence"
    assert not any(note.startswith(NOTE) for note in int8.notes)


def test_a_typed_kind_keeps_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: dict[str, Any]) -> None:
    typed = _evaluated(tmp_path, monkeypatch, built, built["config"], output_kinds={"stages": "sequence"})
    assert (typed.variants[1].drift or {})["stages"]["kind"] == "sequence"  # evaluate's own --output-kind
    config = dict(built["config"])
    told = {k: {"string_value": v} for k, v in kinds_parameter({"stages": "sequence"}).items()}
    config["parameters"] = {**config["parameters"], **told}  # the build's --output-kind beside its labels' word
    int8 = _evaluated(tmp_path, monkeypatch, built, config).variants[1]
    assert (int8.drift or {})["stages"]["kind"] == "sequence"
    assert not any(note.startswith(NOTE) for note in int8.notes)
