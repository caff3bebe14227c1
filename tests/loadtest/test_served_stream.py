"""The data of a recurrent model's evaluate: a recorded stream's rows out of order are said (a shuffled file dropped a
small RNN's reference accuracy from 1.0 to 0.52 without a word); rows in order, or no recorded state, say nothing."""

from __future__ import annotations

import numpy as np

from loadtest.served_stream import order_notes, stream_state


def _stream(rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A recorded stream: the state fed at each row, and the state each row puts out (the next row's input)."""
    rng = np.random.default_rng(0)
    states = [np.zeros(8, np.float32)]
    for _ in range(rows):
        states.append(np.tanh(states[-1] * 0.9 + rng.normal(size=8)).astype(np.float32))
    return np.stack(states[:-1]), np.stack(states[1:])


def test_rows_out_of_order_are_said_and_rows_in_order_are_not() -> None:
    fed, put_out = _stream()
    state = {"state_out": "state_in"}
    assert order_notes({"state_in": fed}, {"state_out": put_out}, state) == []
    order = np.random.default_rng(1).permutation(len(fed))
    (note,) = order_notes({"state_in": fed[order]}, {"state_out": put_out}, state)
    assert note.startswith("the data's 'state_in' differs from the reference's own 'state_out' of the row before at ")
    assert note.endswith(
        "they are out of order; each model was fed its own state from the first row on, in the data's order"
    )
    zeros = np.zeros_like(fed)  # never recorded: one state for every row
    assert order_notes({"state_in": zeros}, {"state_out": put_out}, state) == []


def test_variants_of_one_model_record_the_same_state() -> None:
    configs = {"a": {"parameters": {"quantserve_state": {"string_value": "h=h0"}}}, "b": {}}
    assert stream_state(["a", "b"], configs.get) == {"h": "h0"}
    assert stream_state(["b"], configs.get) == {}
