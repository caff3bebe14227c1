"""evaluate reads each output's kind with the reference graph's words, as optimize does: a Sigmoid's low-confidence
multi-label output, judged by its label sets in optimize, read `dense` through the served endpoint and passed there
on correlation. The build records the words in its manifest, deploy in the served config, evaluate reads them back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest.accuracy_results import VariantAccuracy
from loadtest.evaluator import judge_variants
from optimizer.drift_budget import DriftBudget
from optimizer.graph_words import GraphWords
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.token_axes import TokenAxes
from quantserve.artifact import GRAPH_OUTPUTS, Manifest, TensorSpec
from quantserve.data import TensorData
from serving.deploy import deploy
from serving.deploy_config import model_parameters
from serving.graph_parameter import GRAPH_PARAMETER, recorded_graph
from serving.model_config import parse_config, to_protobuf_text

UNTIMED = SpeedSettings(enabled=False)


def _sigmoid_head(path: Path) -> Path:
    """x (N, 16) -> probs = Sigmoid(x·W - 0.3) (N, 10) through a Reshape; scores = 100·Sigmoid(x·W), scaled."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["logits"]),
        helper.make_node("Sub", ["logits", "bias"], ["shifted"]),
        helper.make_node("Sigmoid", ["shifted"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["probs"]),
        helper.make_node("Sigmoid", ["logits"], ["q"]),
        helper.make_node("Mul", ["q", "hundred"], ["scores"]),
    ]
    weights = {
        "W": np.random.default_rng(33).normal(0.0, 0.2, (16, 10)).astype(np.float32),
        "bias": np.full(10, 0.3, np.float32),
        "hundred": np.array(100.0, np.float32),
        "shape": np.array([-1, 10], np.int64),
    }
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 10]) for n in ("probs", "scores")],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _served(config: dict[str, object], tmp_path: Path) -> dict[str, object]:
    """A config dict as Triton returns it: written as config.pbtxt, read back with Triton's message type."""
    path = tmp_path / "config.pbtxt"
    path.write_text(to_protobuf_text(config))
    return parse_config(path)


def test_optimize_records_the_sigmoid_and_deploy_writes_it_into_the_served_config(tmp_path: Path) -> None:
    model = _sigmoid_head(tmp_path / "head.onnx")
    x = np.random.default_rng(1).normal(0.0, 1.0, (300, 16)).astype(np.float32)
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "build"
    optimize(OptimizeOptions(model, tmp_path / "calib.npz", "fp32", "embedded", out, speed=UNTIMED))
    assert Manifest.load(out).extra[GRAPH_OUTPUTS] == {"sigmoid": ["probs"], "token_axes": {}}
    deployed = deploy(out, tmp_path / "repo", "head")
    words = recorded_graph(parse_config(deployed.config_path))
    assert words == GraphWords(frozenset({"probs"}), TokenAxes())


def test_the_graph_words_round_trip_through_a_served_config(tmp_path: Path) -> None:
    record = {"sigmoid": ["probs"], "token_axes": {"tokens": ["per_token"], "not_tokens": ["pooled"]}}
    manifest = Manifest("m", [TensorSpec("x", "float32", ("batch", 4))], [], extra={GRAPH_OUTPUTS: record})
    parameters = model_parameters(manifest, None)
    assert GRAPH_PARAMETER in parameters
    served = _served({"name": "m", "parameters": {k: {"string_value": v} for k, v in parameters.items()}}, tmp_path)
    axes = TokenAxes(tokens=frozenset({"per_token"}), not_tokens=frozenset({"pooled"}))
    assert recorded_graph(served) == GraphWords(frozenset({"probs"}), axes)
    empty = Manifest("m", [], [], extra={GRAPH_OUTPUTS: {"sigmoid": [], "token_axes": {}}})
    served = _served({"name": "m", "parameters": {GRAPH_PARAMETER: {"string_value": "x"}}}, tmp_path)
    assert recorded_graph(served) is None  # garbled: as if none were recorded
    assert recorded_graph({"name": "m"}) is None  # an older deploy: none recorded
    assert GRAPH_PARAMETER not in model_parameters(Manifest("m", [], []), None)
    said_nothing = _served({"name": "m", "parameters": {GRAPH_PARAMETER: {"string_value": ""}}}, tmp_path)
    assert recorded_graph(said_nothing) is None
    text = model_parameters(empty, None)[GRAPH_PARAMETER]
    assert recorded_graph({"parameters": {GRAPH_PARAMETER: {"string_value": text}}}) == GraphWords()  # said: none


def _low_confidence_probs() -> tuple[np.ndarray, np.ndarray]:
    """A 10-label sigmoid head's scores mostly 0.1-0.9, and a build's with ~3 % of its label sets flipped at 0.5,
    each from 0.03 off it (a flip within 0.02 is FP32's near-tie, left out: `optimizer.label_sets`)."""
    rng = np.random.default_rng(3)
    probs = (1.0 / (1.0 + np.exp(-rng.normal(0.0, 0.6, (400, 10))))).astype(np.float32)
    got = (probs + rng.normal(0.0, 0.002, probs.shape)).astype(np.float32)
    probs[:12, 0], got[:12, 0] = 0.53, 0.47
    changed = float(np.mean(((probs >= 0.5) != (got >= 0.5)).any(axis=1)))
    assert 0.01 < changed < 0.1, changed
    return probs, got


def _judged(graph: GraphWords | None) -> VariantAccuracy:
    probs, got = _low_confidence_probs()
    variants = [VariantAccuracy("fp32", 400), VariantAccuracy("int8", 400)]
    outputs = {"fp32": {"probs": probs}, "int8": {"probs": got}}
    judge_variants(variants, outputs, "fp32", DriftBudget(), {}, None, graph=graph)
    return variants[1]


def test_a_sigmoid_output_is_judged_by_its_label_sets_where_the_reference_records_it() -> None:
    judged = _judged(GraphWords(frozenset({"probs"})))
    assert judged.drift is not None and judged.drift["probs"]["kind"] == "multilabel"
    lines = judged.violations
    assert any("output 'probs' (multilabel): label-set agreement" in line for line in lines), lines
    assert not any("does not record" in note for note in judged.notes), judged.notes


def test_without_the_recorded_words_it_reads_dense_and_a_note_says_why() -> None:
    judged = _judged(None)
    assert judged.drift is not None and judged.drift["probs"]["kind"] == "dense"
    assert judged.violations == []
    lines = [note for note in judged.notes if "does not record its graph's word" in note]
    assert len(lines) == 1 and "--output-kind probs=multilabel" in lines[0], judged.notes
    assert "10 columns all in [0, 1]" in lines[0], lines[0]
    said_none = _judged(GraphWords())  # recorded: no Sigmoid makes it, so dense is the graph's reading too
    assert said_none.violations == [] and not any("does not record" in note for note in said_none.notes)


def test_a_pooled_width_the_graph_says_is_not_per_token_is_judged_over_whole_rows() -> None:
    """A mean-pooled (N, 128) embedding of a model with (N, 128) token ids: read per token it is judged over the real
    tokens only, and a build scrambling its dims 64-127 (past every sentence's end) passes; the graph says it is not
    per token (tests/optimizer/test_s31_token_width.py, through optimize's verify)."""
    rng = np.random.default_rng(2)
    lengths = rng.integers(6, 61, 64)
    mask = (np.arange(128)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, 500, (64, 128)) * mask
    table = np.random.default_rng(0).normal(0, 1, (500, 128)).astype(np.float32)
    pooled = (table[ids] * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    scrambled = pooled.copy()
    scrambled[:, 64:] = pooled[:, 64:][:, ::-1]
    outputs = {"fp32": {"pooled": pooled}, "int8": {"pooled": scrambled}}
    inputs = {"input_ids": ids, "attention_mask": mask}

    def judged(graph: GraphWords | None) -> VariantAccuracy:
        variants = [VariantAccuracy("fp32", 64), VariantAccuracy("int8", 64)]
        judge_variants(variants, outputs, "fp32", DriftBudget(), {}, None, inputs, graph=graph)
        return variants[1]

    assert judged(None).violations == []  # read per token, as before: the scrambled dims lie past the tokens
    refused = judged(GraphWords(axes=TokenAxes(not_tokens=frozenset({"pooled"}))))
    assert refused.drift is not None and refused.drift["pooled"]["kind"] == "embedding"
    assert refused.violations, "the whole rows differ"


def test_evaluate_reads_the_words_from_the_reference_models_served_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference's config records the Sigmoid (the variant's, deployed by an older quantserve, does not)."""
    import loadtest.evaluator as evaluator

    probs, got = _low_confidence_probs()
    text = json.dumps({"sigmoid": ["probs"], "token_axes": {}})
    configs = {"fp32": {"parameters": {GRAPH_PARAMETER: {"string_value": text}}}, "int8": {}}
    monkeypatch.setattr(evaluator, "served_config", lambda url, model: configs[model])
    answers = {"fp32": {"probs": probs}, "int8": {"probs": got}}
    monkeypatch.setattr(evaluator, "served_outputs", lambda url, model, *args, **kwargs: answers[model])
    data = TensorData({"x": np.zeros((400, 16), np.float32)})
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    judged = {v.model: v for v in report.variants}["int8"]
    assert judged.drift is not None and judged.drift["probs"]["kind"] == "multilabel"
    assert judged.violations and not any("does not record" in note for note in judged.notes)
    configs["fp32"] = {}  # deployed by an older quantserve: read off the values, and said so
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["int8"], "fp32", data, budget=DriftBudget())
    judged = {v.model: v for v in report.variants}["int8"]
    assert judged.violations == [] and any("--output-kind probs=multilabel" in note for note in judged.notes)


def test_a_build_that_records_no_graph_words_gets_them_from_its_reference_at_deploy(tmp_path: Path) -> None:
    """A build by an older quantserve (no graph_outputs in its manifest) was served with none recorded."""
    model = _sigmoid_head(tmp_path / "head.onnx")
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(2).normal(0.0, 1.0, (300, 16)).astype(np.float32))
    out = tmp_path / "build"
    optimize(OptimizeOptions(model, tmp_path / "calib.npz", "fp32", "embedded", out, speed=UNTIMED))
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["extra"][GRAPH_OUTPUTS]
    (out / "manifest.json").write_text(json.dumps(manifest))
    deployed = deploy(out, tmp_path / "repo", "head")
    assert recorded_graph(parse_config(deployed.config_path)) == GraphWords(frozenset({"probs"}), TokenAxes())
