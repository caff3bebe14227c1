"""An (N, C) output as wide as the token length is told from one value per token by the graph's shapes
(optimizer.token_axes; issue 9, session 31).

A pooled sentence embedding (N, 128) of a model whose input_ids are (N, 128) was read as one value per token, judged
over the real tokens only: a build with its dims 64-127 scrambled passed, those dims lying past most sentences' end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.token_axes import TokenAxes, token_axes
from optimizer.verify import VerifyAgainstReference
from quantserve.data import TensorData

SAMPLES, LENGTH, WIDTH, VOCABULARY = 64, 128, 128, 500
TOKEN_INPUTS = ("input_ids", "attention_mask")


def _pooled_model(path: Path, scrambled: bool, tokens: str | int = "sequence") -> Path:
    """Mean-pooled token embeddings (N, WIDTH); `scrambled`: dims 64-127 permuted, as a broken build's."""
    table = np.random.default_rng(0).normal(0, 1, (VOCABULARY, WIDTH)).astype(np.float32)
    order = np.arange(WIDTH)
    if scrambled:
        order[64:] = order[64:][::-1]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["vectors"]),
        helper.make_node("Cast", ["attention_mask"], ["weights"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["weights", "last"], ["weights3"]),
        helper.make_node("Mul", ["vectors", "weights3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "tokens_axis"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["weights", "tokens_axis"], ["count"], keepdims=1),
        helper.make_node("Div", ["summed", "count"], ["mean"]),
        helper.make_node("Gather", ["mean", "order"], ["pooled"], axis=1),
    ]
    weights = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([2], np.int64), "last"),
        numpy_helper.from_array(np.array([1], np.int64), "tokens_axis"),
        numpy_helper.from_array(order.astype(np.int64), "order"),
    ]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", tokens]) for n in ("input_ids", "attention_mask")
    ]
    output = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", WIDTH])
    graph = helper.make_graph(nodes, "pooled", inputs, [output], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _per_token_model(path: Path, pads_moved: bool) -> Path:
    """One logit per token (N, "sequence"), as an ELECTRA discriminator's; `pads_moved`: the pads' values +20."""
    logits = np.random.default_rng(1).normal(0, 3, VOCABULARY).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["logits_table", "input_ids"], ["raw"]),
        helper.make_node("Cast", ["attention_mask"], ["real"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["one", "real"], ["pad"]),
        helper.make_node("Mul", ["pad", "shift"], ["moved"]),
        helper.make_node("Add", ["raw", "moved"], ["logits"]),
    ]
    weights = [
        numpy_helper.from_array(logits, "logits_table"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(20.0 if pads_moved else 0.0, np.float32), "shift"),
    ]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
        for n in ("input_ids", "attention_mask")
    ]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence"])
    graph = helper.make_graph(nodes, "per_token", inputs, [output], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _sentences() -> TensorData:
    """Token rows of LENGTH, 6-60 real tokens each: every sentence ends before dim 64."""
    rng = np.random.default_rng(2)
    lengths = rng.integers(6, 61, SAMPLES)
    mask = (np.arange(LENGTH)[None, :] < lengths[:, None]).astype(np.int64)
    ids = rng.integers(1, VOCABULARY, (SAMPLES, LENGTH)) * mask
    return TensorData({"input_ids": ids, "attention_mask": mask})


def test_a_pooled_embedding_as_wide_as_the_tokens_with_half_its_dims_scrambled_is_refused(tmp_path: Path) -> None:
    reference = _pooled_model(tmp_path / "fp32.onnx", scrambled=False)
    broken = _pooled_model(tmp_path / "broken.onnx", scrambled=True)
    record = VerifyAgainstReference(reference, _sentences(), "s.npz").measure(broken)
    assert record["outputs"]["pooled"]["kind"] == "embedding"
    assert record["holds"] is False
    assert record["outputs"]["pooled"]["cosine_mean"] < 0.9
    assert VerifyAgainstReference(reference, _sentences(), "s.npz").measure(reference)["holds"] is True


def test_a_fixed_token_length_leaves_the_graph_silent_and_the_width_is_judged_both_ways(tmp_path: Path) -> None:
    reference = _pooled_model(tmp_path / "fp32.onnx", scrambled=False, tokens=LENGTH)
    broken = _pooled_model(tmp_path / "broken.onnx", scrambled=True, tokens=LENGTH)
    assert token_axes(reference) == TokenAxes(unsaid=frozenset({"pooled"}))
    record = VerifyAgainstReference(reference, _sentences(), "s.npz").measure(broken)
    assert record["holds"] is False
    assert record["outputs"]["pooled"]["whole_row"]["cosine_mean"] < 0.9
    assert "judged as an embedding too" in record["violations"][0]["hint"]


def test_one_value_per_token_is_still_read_over_the_real_tokens_alone(tmp_path: Path) -> None:
    reference = _per_token_model(tmp_path / "fp32.onnx", pads_moved=False)
    pads_moved = _per_token_model(tmp_path / "pads.onnx", pads_moved=True)
    assert token_axes(reference) == TokenAxes(tokens=frozenset({"logits"}))
    data = _sentences()
    record = VerifyAgainstReference(reference, data, "s.npz").measure(pads_moved)
    assert record["holds"] is True, record["violations"]
    assert record["outputs"]["logits"]["tokens_judged"] == int(data.arrays["attention_mask"].sum())


def test_a_fixed_width_is_not_the_token_axis_and_another_symbol_is_unsaid() -> None:
    """tf2onnx names every output axis afresh (unk__N): another symbol says nothing, so both readings are judged."""
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT32, ["n", "t"])]
    outputs = [
        helper.make_tensor_value_info("same", TensorProto.FLOAT, ["n", "t"]),
        helper.make_tensor_value_info("other", TensorProto.FLOAT, ["n", "d"]),
        helper.make_tensor_value_info("fixed", TensorProto.FLOAT, ["n", 64]),
        helper.make_tensor_value_info("states", TensorProto.FLOAT, ["n", "t", 64]),
    ]
    nodes = [helper.make_node("Identity", ["x"], [name]) for name in ("same", "other", "fixed", "states")]
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs))
    assert token_axes(model) == TokenAxes(
        tokens=frozenset({"same"}), not_tokens=frozenset({"fixed"}), unsaid=frozenset({"other"})
    )
