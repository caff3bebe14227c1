"""A recurrent layer's last hidden or cell state is a vector, not class scores: g2p-id's Keras LSTM encoder (session
41) had its 256-wide cell state read as a classifier's logits (signed, its softmax peaked) and an INT8 build refused
at "top-1 agreement 0.9851" while greedy decoding changed 1 word in 700. Read from the graph, it is an embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.graph_words import GraphWords, read_graph_words, words_from_record, words_record
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.output_kinds import infer_output_kinds
from optimizer.recurrent_states import recurrent_state_outputs

UNITS, STEPS = 64, 20


def _lstm(path: Path) -> Path:
    """x (T, N, 64) -> an LSTM whose gates are always open and whose cell input is tanh(8·x): each step adds about 1
    to the units x is high on. Outputs: its cell state (Y_c) and hidden state (Y_h) squeezed to (N, 64), its
    per-step outputs Y, and a Softmax of the cell state (class scores made from it)."""
    weights = np.zeros((1, 4 * UNITS, UNITS), np.float32)
    weights[0, 3 * UNITS :] = 8.0 * np.eye(UNITS)  # gates i, o, f, c in ONNX's order: the cell input follows x
    bias = np.zeros((1, 8 * UNITS), np.float32)
    bias[0, : 3 * UNITS] = 20.0  # input, output and forget gates open
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Y_h", "Y_c"], hidden_size=UNITS),
        helper.make_node("Squeeze", ["Y_c", "axis0"], ["cell"]),
        helper.make_node("Squeeze", ["Y_h", "axis0"], ["hidden"]),
        helper.make_node("Identity", ["Y"], ["steps"]),
        helper.make_node("Softmax", ["cell"], ["probs"], axis=-1),
    ]
    initializers = {
        "W": weights,
        "R": np.zeros((1, 4 * UNITS, UNITS), np.float32),
        "B": bias,
        "axis0": np.array([0], np.int64),
    }
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", UNITS]) for n in ("cell", "hidden", "probs")]
    outputs.append(helper.make_tensor_value_info("steps", TensorProto.FLOAT, [STEPS, 1, "N", UNITS]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [STEPS, "N", UNITS])],
        outputs,
        [numpy_helper.from_array(v, k) for k, v in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _cell_state(model: Path) -> np.ndarray:
    """The cell state over 300 sequences, each high on one random unit: about STEPS there, near 0 elsewhere."""
    rng = np.random.default_rng(41)
    x = rng.normal(0.0, 0.05, (STEPS, 300, UNITS)).astype(np.float32)
    x[:, np.arange(300), rng.integers(0, UNITS, 300)] += 1.0
    with OnnxRuntimeRunner(model) as runner:
        return np.asarray(runner.infer({"x": x})["cell"])


def test_an_lstms_peaked_cell_state_is_read_as_an_embedding_not_class_scores(tmp_path: Path) -> None:
    model = _lstm(tmp_path / "lstm.onnx")
    assert recurrent_state_outputs(model) == {"cell", "hidden"}  # through a Squeeze; not Y, nor a Softmax of it
    cell = _cell_state(model)
    assert cell.max() > 15 and cell.min() < 0  # wide, signed, one unit far above the rest: logits to the values
    assert infer_output_kinds({"cell": cell}) == {"cell": "classification"}  # read off the values alone
    words = read_graph_words(model)
    kinds = infer_output_kinds({"cell": cell}, sigmoid=words.sigmoid, state=words.state)
    assert kinds == {"cell": "embedding"}


def test_a_typed_kind_stands_for_a_recurrent_state(tmp_path: Path) -> None:
    cell = _cell_state(_lstm(tmp_path / "lstm.onnx"))
    kinds = infer_output_kinds({"cell": cell}, {"cell": "dense"}, state={"cell"})
    assert kinds == {"cell": "dense"}


def test_the_state_words_are_recorded_for_evaluate_and_older_records_still_read(tmp_path: Path) -> None:
    words = read_graph_words(_lstm(tmp_path / "lstm.onnx"))
    record = words_record(words)
    assert record["state"] == ["cell", "hidden"]
    assert words_from_record(record) == words
    older = {"sigmoid": ["p"], "token_axes": {}}  # a record of a quantserve before it read states
    assert words_record(GraphWords(frozenset({"p"}))) == older
    assert words_from_record(older) == GraphWords(frozenset({"p"}))
    assert words_from_record({**older, "state": "cell"}) is None  # garbled


def test_an_output_that_is_no_recurrent_state_is_not_named() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    assert recurrent_state_outputs(helper.make_model(graph)) == frozenset()
