"""Outputs that are a recurrent layer's state: an LSTM's, GRU's or RNN's last hidden state (Y_h) or cell state (Y_c).

Values alone cannot tell such a state from class scores: g2p-id's Keras LSTM encoder (session 41) outputs its 256-wide
hidden and cell states, signed, whose softmax commits on the median row to a position that varies, and its cell state
was read as a classifier's logits: an INT8 encoder was refused at "top-1 agreement 0.9851" of an argmax that means
nothing, while greedy decoding of 700 words with it changed 1 word. The graph can: an output the LSTM/GRU/RNN node
makes as its Y_h or Y_c (through ops that only move or cast values: the Squeeze of its direction axis) is a state
vector, judged as an embedding (per-row cosine). Its per-step outputs (Y) are not named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import onnx

from optimizer.sigmoid_outputs import CARRY_OPS

RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
STATE_SLOTS = (1, 2)  # a recurrent node's outputs Y_h and Y_c (0 is Y, every step's hidden state)
# kinds read off a state's values that judge it by an argmax -> the kind it is judged as
STATE_KINDS = {
    "classification": "embedding",
    "multilabel": "embedding",
    "sequence": "token_embedding",
    "token_classification": "token_embedding",
}


def recurrent_state_outputs(model: onnx.ModelProto | Path | str) -> frozenset[str]:
    """The graph outputs that are a recurrent node's Y_h or Y_c, directly or through `CARRY_OPS`."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    producers = {out: node for node in model.graph.node for out in node.output}
    return frozenset(value.name for value in model.graph.output if _a_state(value.name, producers))


def _a_state(name: str, producers: Mapping[str, onnx.NodeProto]) -> bool:
    seen: set[str] = set()
    while (node := producers.get(name)) is not None and name not in seen:
        if node.op_type in RECURRENT_OPS:
            return list(node.output).index(name) in STATE_SLOTS
        if node.op_type not in CARRY_OPS or not node.input:
            return False
        seen.add(name)
        name = node.input[0]
    return False


def state_kind(kind: str) -> str:
    """The kind a recurrent state is judged as where its values read as class scores (`STATE_KINDS`): an embedding,
    per row (or per position); `kind` otherwise (an embedding, or dense values, already judged as values)."""
    return STATE_KINDS.get(kind, kind)
