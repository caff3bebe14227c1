"""Outputs that are a recurrent layer's state: an LSTM's, GRU's or RNN's last hidden state (Y_h) or cell state (Y_c).

Values alone cannot tell such a state from class scores: g2p-id's Keras LSTM encoder (session 41) outputs its 256-wide
hidden and cell states, signed, whose softmax commits on the median row to a position that varies, and its cell state
was read as a classifier's logits: an INT8 encoder was refused at "top-1 agreement 0.9851" of an argmax that means
nothing, while greedy decoding of 700 words with it changed 1 word. The graph can: an output the LSTM/GRU/RNN node
makes as its Y_h or Y_c (through ops that only move or cast values: the Squeeze of its direction axis) is a state
vector, judged as an embedding (per-row cosine). Its per-step outputs (Y) are not named here.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from optimizer.sigmoid_outputs import outputs_made_by

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
    return outputs_made_by(
        model, lambda node, output: node.op_type in RECURRENT_OPS and list(node.output).index(output) in STATE_SLOTS
    )


def state_kind(kind: str) -> str:
    """The kind a recurrent state is judged as where its values read as class scores (`STATE_KINDS`): an embedding,
    per row (or per position); `kind` otherwise (an embedding, or dense values, already judged as values)."""
    return STATE_KINDS.get(kind, kind)
