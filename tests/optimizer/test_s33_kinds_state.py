"""An output shaped like an input is guessed as recurrent state only beside a step's answer: a feature refiner (feats
(N, 128) and their SNR in, refined (N, 128) out, no names) was paired as state, and its closed-loop check fed each
row's refined features back as the next row's input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.state_loop import StatePair, find_state_pairs


def _save(path: Path, nodes: list, inputs: list, outputs: list, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _refiner(path: Path, outputs: list[str]) -> Path:
    """refined = feats + sigmoid(-snr) · (feats · W); with "hn"/"h" names, or a score beside it, where asked."""
    feats, refined = ("h", "hn") if "hn" in outputs else ("feats", "refined")
    nodes = [
        helper.make_node("MatMul", [feats, "W"], ["delta"]),
        helper.make_node("Neg", ["snr"], ["minus"]),
        helper.make_node("Sigmoid", ["minus"], ["gate"]),
        helper.make_node("Mul", ["delta", "gate"], ["step"]),
        helper.make_node("Add", [feats, "step"], [refined]),
        helper.make_node("MatMul", [refined, "V"], ["score"]),
    ]
    weights = {"W": np.eye(128) * 0.1, "V": np.ones((128, 3))}
    shapes = {refined: ["N", 128], "score": ["N", 3]}
    ins = [(feats, ["N", 128]), ("snr", ["N", 1])]
    return _save(path, nodes, ins, [(name, shapes[name]) for name in outputs], weights)


def test_a_refiners_only_output_is_no_state(tmp_path: Path) -> None:
    assert find_state_pairs(_refiner(tmp_path / "refiner.onnx", ["refined"])) == []


def test_state_beside_a_steps_answer_or_named_stays_paired(tmp_path: Path) -> None:
    stepped = _refiner(tmp_path / "step.onnx", ["score", "refined"])  # an answer beside it: a step's state
    assert find_state_pairs(stepped) == [StatePair("refined", "feats")]
    named = _refiner(tmp_path / "named.onnx", ["hn"])  # named as state: paired, answer or not
    assert find_state_pairs(named) == [StatePair("hn", "h")]
    assert find_state_pairs(_refiner(tmp_path / "asked.onnx", ["refined"]), {"refined": "feats"}) == [
        StatePair("refined", "feats")
    ]
