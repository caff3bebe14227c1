"""Refusals of inputs whose axis 0 is not a batch, and of graphs ONNX's checker rejects, as lines a user can act on:
a recurrent model's state (silero-vad's h (1, 1, 128) beside its rows) is named as a state with the ways out the
tool has, not "re-export it"; data arrays say where each was read as the batch; a checker's node keeps its op type
and loses the middle of a 100-character name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import validate_int8
from optimizer.export import export_onnx
from optimizer.onnx_input import checker_reason
from optimizer.source import load_source
from quantserve.data import load_npz
from quantserve.errors import QuantserveError


def _stateful(path: Path, state_shape: list[int | str], default: bool = False) -> Path:
    """frames (rows, 8) + a state h of `state_shape` → frames + h's first 8 values (an RNN step, in miniature);
    `default`: h also has an initializer of its name (its default value)."""
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["h", "flat"], ["h8"]),
            helper.make_node("Add", ["frames", "h8"], ["out"]),
        ],
        "stateful",
        [
            helper.make_tensor_value_info("frames", TensorProto.FLOAT, ["rows", 8]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, state_shape),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["rows", 8])],
        [numpy_helper.from_array(np.array([1, 8], np.int64), "flat")]
        + ([numpy_helper.from_array(np.zeros((1, 1, 8), np.float32), "h")] if default else []),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_state_input_is_named_as_one_with_the_ways_out(tmp_path: Path) -> None:
    path = _stateful(tmp_path / "vad.onnx", [1, 1, 8])
    with pytest.raises(QuantserveError) as refused:
        export_onnx(load_source(path), tmp_path / "out.onnx")
    assert str(refused.value) == (
        f"{path}: input 'h' has axis 0 fixed at 1 (shape [1, 1, 8]) beside input 'frames', whose axis 0 is dynamic: "
        "'h' is likely a state or a constant whose axis 0 is no batch (an RNN state is [layers, batch, hidden]), "
        "while quantserve batches requests by the rows of axis 0 of every input, at every precision; a constant (an "
        "initial state): give the graph an initializer named 'h' holding it, which optimize folds into the model; a "
        "state per request: wrap the model so that 'h' takes the batch on axis 0 (a Transpose inside the graph), one "
        "state per row of 'frames', which needs its rows to be separate samples, not the steps of one sequence"
    )
    assert "re-export" not in str(refused.value)
    folded = export_onnx(load_source(_stateful(tmp_path / "default.onnx", [1, 1, 8], default=True)), tmp_path / "d")
    assert [spec.name for spec in folded.manifest.inputs] == ["frames"], "the way out it names works"


def test_a_state_batched_on_axis_1_and_a_scalar_beside_rows(tmp_path: Path) -> None:
    path = _stateful(tmp_path / "vad.onnx", [2, "batch", 4])  # silero-vad's state: [2, batch, 128]
    with pytest.raises(
        QuantserveError, match=r"'h' is likely a state or a constant whose axis 0 is no batch \(axis 1, "
    ):
        export_onnx(load_source(path), tmp_path / "out.onnx")
    scalar = _stateful(tmp_path / "scalar.onnx", [])
    with pytest.raises(QuantserveError) as refused:
        export_onnx(load_source(scalar), tmp_path / "out.onnx")
    assert str(refused.value).startswith(
        f"{scalar}: input 'h' has rank 0 (one value for every row) while input 'frames' has a batch axis; Triton "
        "batches requests along axis 0 of every input, so a per-model constant belongs in the model: give the graph "
        "an initializer named 'h' holding its value"
    )


def test_data_arrays_say_where_each_was_read_as_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "vad.npz"
    np.savez(path, input=np.zeros((6, 512), np.float32), state=np.zeros((2, 6, 128), np.float32), sr=np.array(16000))
    with pytest.raises(QuantserveError) as refused:
        load_npz(path)
    assert str(refused.value) == (
        f"{path}: arrays disagree on the number of samples, read as axis 0 of each: 'input' 6 (axis 0 of shape "
        "(6, 512)), 'state' 2 (axis 0 of shape (2, 6, 128); its axis 1 holds 6), 'sr' none (rank 0: one value, no "
        "axis 0) (samples are rows of axis 0 of every input, as Triton's dynamic batching stacks them; the file "
        "holds the model's inputs and 'labels' alone); 'sr' (rank "
        "0) is a per-model constant: leave it out of the data and give the model an initializer of the same name "
        "holding the value (the input's default), which optimize folds into the model as that constant"
    )


def test_a_checker_refusal_keeps_the_node_and_cuts_long_names(tmp_path: Path) -> None:
    inlined = "If_0_then_branch__Inline_0__/decoder/rnn/Squeeze_output_0_subg_96_sub_graph2_subg_4_If_0_then_branch"
    graph = helper.make_graph(
        [
            helper.make_node("Relu", [inlined], ["y"], name="/decoder/rnn/Relu"),
            helper.make_node("Relu", ["x"], [inlined], name="first"),
        ],
        "unsorted",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "int8.onnx")
    with pytest.raises(QuantserveError) as refused:
        validate_int8(tmp_path / "int8.onnx", {"x": np.zeros(1, np.float32)})
    assert str(refused.value) == (
        "the INT8 model fails ONNX's checker (Nodes in a graph must be topologically sorted, however input "
        "'If_0_then_branch__Inline_0__/…graph2_subg_4_If_0_then_branch' of Relu node '/decoder/rnn/Relu' is not "
        "output of any previous nodes.)"
    )
    squeeze = helper.make_node("Squeeze", ["x"], ["y"], name="n" * 80, axes=[0])  # an attribute opset 13 dropped
    with pytest.raises(onnx.checker.ValidationError) as rejected:
        onnx.checker.check_model(helper.make_model(helper.make_graph([squeeze], "g", graph.input, graph.output)))
    assert checker_reason(rejected.value) == (
        f"Unrecognized attribute: axes for operator Squeeze (Squeeze node '{'n' * 29}…{'n' * 30}')"
    )
