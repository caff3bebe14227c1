"""Per-token outputs over the same tokens are judged together too (optimizer.joint_tokens; session 48).

A slovnet parser's heads agreed 0.9979 and its labels 0.9907, each over the 0.99 budget, and its INT8 shipped; the
share of tokens whose head and label both agreed (labelled attachment, what a user scores) was 0.9894.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.drift import measure_drift
from optimizer.drift_budget import DriftBudget
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData

N, T, HEADS, LABELS = 20, 50, 50, 12
KINDS = {"heads": "token_classification", "labels": "token_classification"}


def _answers(rng: np.random.Generator, classes: int) -> np.ndarray:
    return (rng.standard_normal((N, T, classes)) * 3).astype(np.float32)


def _flipped(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """`logits` with the top-1 of each of the flat `tokens` moved to another class."""
    out = logits.copy().reshape(-1, logits.shape[2])
    out[tokens] = np.roll(out[tokens], 1, axis=1)
    return out.reshape(logits.shape)


def _parser(other_tokens: bool) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Heads and labels each changed on 5 of 1000 tokens (0.995): on other tokens, or on the same ones."""
    rng = np.random.default_rng(0)
    reference = {"heads": _answers(rng, HEADS), "labels": _answers(rng, LABELS)}
    tokens = rng.choice(N * T, 10, replace=False)
    first, second = (tokens[:5], tokens[5:]) if other_tokens else (tokens[:5], tokens[:5])
    return reference, {"heads": _flipped(reference["heads"], first), "labels": _flipped(reference["labels"], second)}


def test_two_heads_agreeing_on_other_tokens_are_refused_together() -> None:
    reference, candidate = _parser(other_tokens=True)
    report = measure_drift(reference, candidate, KINDS, DriftBudget(min_top1_agreement=0.992))
    assert report.outputs["heads"]["token_agreement"] == report.outputs["labels"]["token_agreement"] == 0.995
    joint = report.outputs["heads+labels"]
    assert joint["kind"] == "token_joint" and joint["outputs"] == ["heads", "labels"]
    assert joint["token_agreement"] == 0.99 and joint["tokens_judged"] == N * T
    assert not report.holds
    (violation,) = report.violations
    line = violation.line(joint["kind"])
    assert line.startswith("outputs 'heads+labels' (token_joint): per-token top-1 agreement"), line
    assert "0.99 < budget 0.992" in line


def test_two_heads_changing_the_same_tokens_hold() -> None:
    reference, candidate = _parser(other_tokens=False)
    report = measure_drift(reference, candidate, KINDS, DriftBudget(min_top1_agreement=0.992))
    assert report.outputs["heads+labels"]["token_agreement"] == 0.995
    assert report.holds, report.violations


def test_one_per_token_output_or_outputs_over_other_tokens_are_judged_alone() -> None:
    reference, candidate = _parser(other_tokens=True)
    alone = measure_drift({"heads": reference["heads"]}, {"heads": candidate["heads"]}, KINDS, DriftBudget())
    assert list(alone.outputs) == ["heads"]
    shorter = {name: values[:, : T - 1] for name, values in reference.items()}
    moved = {"heads": candidate["heads"], "labels": candidate["labels"][:, : T - 1]}
    apart = measure_drift({"heads": reference["heads"], "labels": shorter["labels"]}, moved, KINDS, DriftBudget())
    assert sorted(apart.outputs) == ["heads", "labels"]


SAMPLES, LENGTH, VOCABULARY = 64, 40, 400


def _tagger(path: Path, flipped: tuple[list[int], list[int]] = ([], [])) -> Path:
    """Two tag heads (N, T, 12) and (N, T, 9) read off the token ids; `flipped`: the ids whose top-1 tag each head's
    table moves, as a drifting build's."""
    rng = np.random.default_rng(1)
    tables = [(rng.standard_normal((VOCABULARY, width)) * 3).astype(np.float32) for width in (12, 9)]
    for table, ids in zip(tables, flipped, strict=True):
        table[ids] = np.roll(table[ids], 1, axis=1)
    nodes = [helper.make_node("Gather", [f"table{i}", "input_ids"], [name]) for i, name in enumerate(KINDS)]
    weights = [numpy_helper.from_array(table, f"table{i}") for i, table in enumerate(tables)]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
        for n in ("input_ids", "attention_mask")
    ]
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "sequence", width])
        for name, width in zip(KINDS, (12, 9), strict=True)
    ]
    graph = helper.make_graph(nodes, "tagger", inputs, outputs, weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_a_two_head_tagger_whose_heads_miss_other_tokens_is_refused_through_verify(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    lengths = rng.integers(10, LENGTH + 1, SAMPLES)
    mask = (np.arange(LENGTH)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, VOCABULARY, (SAMPLES, LENGTH)) * mask
    real_ids = ids[mask.astype(bool)]
    counts = np.bincount(real_ids, minlength=VOCABULARY)
    # ids seen 4-6 times each among the ~1600 real tokens: 3 per head, about 0.9 % of the tokens
    seen = [int(i) for i in np.flatnonzero((counts >= 4) & (counts <= 6))]
    flipped = (seen[:2], seen[2:4])
    reference = _tagger(tmp_path / "fp32.onnx")
    drifted = _tagger(tmp_path / "int8.onnx", flipped)
    data = TensorData({"input_ids": ids, "attention_mask": mask})
    record = VerifyAgainstReference(reference, data, "s.npz").measure(drifted)
    outputs = record["outputs"]
    assert outputs["heads"]["kind"] == outputs["labels"]["kind"] == "token_classification"
    for name, ids_moved in zip(KINDS, flipped, strict=True):
        assert outputs[name]["token_agreement"] == 1 - counts[ids_moved].sum() / real_ids.size >= 0.99
    joint = outputs["heads+labels"]
    assert joint["tokens_judged"] == real_ids.size
    assert joint["token_agreement"] == 1 - counts[flipped[0] + flipped[1]].sum() / real_ids.size < 0.99
    assert record["holds"] is False
    assert "outputs 'heads+labels'" in record["violations"][0]["line"]
    assert VerifyAgainstReference(reference, data, "s.npz").measure(reference)["holds"] is True
