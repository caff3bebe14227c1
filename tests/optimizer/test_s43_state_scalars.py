"""A per-row integer scalar in and out (a width in, a length out) is no recurrent state to guess at (session 43):
trueocr's recognizer had `widths` (B,) → `lengths` (B,) guessed a state, and `evaluate` fed the lengths back as the
next row's widths, scoring a stream of empty lines. Named as a state, or with features, it is still paired."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from optimizer.state_loop import StatePair, find_state_pairs


def two_in_two_out(path: Path, elem: int, dims: list[int | str], names: tuple[str, str]) -> Path:
    """x [B, 8] float and `names[0]` [B, *dims] in; y = x W [B, 3] and `names[1]` = it + 1 out."""
    one = helper.make_tensor("one", elem, [], [1])
    weights = helper.make_tensor("W", TensorProto.FLOAT, [8, 3], [0.5] * 24)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["y"]),
        helper.make_node("Add", [names[0], "one"], [names[1]]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 8]),
            helper.make_tensor_value_info(names[0], elem, ["B", *dims]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3]),
            helper.make_tensor_value_info(names[1], elem, ["B", *dims]),
        ],
        initializer=[one, weights],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("dims", [[], [1]])
def test_an_integer_scalar_a_row_is_no_guessed_state(tmp_path: Path, dims: list[int | str]) -> None:
    model = two_in_two_out(tmp_path / "m.onnx", TensorProto.INT64, dims, ("widths", "lengths"))
    assert find_state_pairs(model) == []


def test_a_float_vector_a_row_is_still_guessed_and_a_named_scalar_still_paired(tmp_path: Path) -> None:
    model = two_in_two_out(tmp_path / "f.onnx", TensorProto.FLOAT, [16], ("memory", "memory_next"))
    assert find_state_pairs(model) == [StatePair("memory_next", "memory")]
    guessed = two_in_two_out(tmp_path / "g.onnx", TensorProto.FLOAT, [16], ("carry", "out2"))
    assert find_state_pairs(guessed) == [StatePair("out2", "carry")]
    named = two_in_two_out(tmp_path / "n.onnx", TensorProto.INT64, [], ("state_in", "state_out"))
    assert find_state_pairs(named) == [StatePair("state_out", "state_in")]
