"""evaluate of a recurrent model whose held-out rows are many sequences in order (probe 54, g2p_en's GRU decoder:
2400 steps of 323 words, each word's first state the encoder's): its stream carried each model's state across the
words, and it said "the data's 'h' differs from the reference's own 'h_out' of the row before at 2396 of 2399 rows
… out of order" of rows in order, comparing with the reference's stream, which never took a word's fresh state.
Now the reference is run on the data's own rows first: where its state output is not the next row's state, a
sequence starts and every model takes the data's state there; rows in order say nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loadtest import evaluator
from loadtest.served_stream import order_notes
from optimizer.state_loop import StatePair, run_stream
from optimizer.transformer import run_model
from quantserve.data import TensorData
from tests.optimizer.test_s54_sequence_starts import SEQUENCES, decoder, greedy_sequences, weights

CONFIG = {"parameters": {"quantserve_state": {"string_value": "hidden_out=hidden"}}}


def test_evaluate_starts_each_sequence_from_the_datas_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w = weights()
    arrays, starts = greedy_sequences(w)
    paths = {"fp32": decoder(tmp_path / "fp32.onnx", w)}
    calls: list[tuple[str, bool]] = []

    def served(
        url: str, model: str, data: TensorData, batch_size: int = 64, *args: Any, **kwargs: Any
    ) -> dict[str, np.ndarray]:  # the server's answers, as ONNX Runtime gives them (probe 54: served = in-process)
        state = args[3] if len(args) > 3 else kwargs.get("state")
        given = args[4] if len(args) > 4 else kwargs.get("starts")
        calls.append((model, bool(state)))
        if state:
            pairs = [StatePair(o, i) for o, i in state.items()]
            return run_stream(paths[model], data.arrays, pairs, data.requests.whole, given)
        return run_model(paths[model], data, batch_size)

    monkeypatch.setattr(evaluator, "served_config", lambda url, model: CONFIG)
    monkeypatch.setattr(evaluator, "served_outputs", served)
    report = evaluator.evaluate_accuracy("127.0.0.1:1", ["fp32"], "fp32", TensorData(dict(arrays)))
    assert report.stream is not None
    assert report.stream["sequences"] == SEQUENCES == len(starts) and report.stream["notes"] == []
    assert (
        f"(the data's {SEQUENCES} sequences each started from its first row's state in the data)"
        in (report.stream["run"])
    )
    assert calls == [("fp32", False), ("fp32", True)]  # the reference on the data's rows, then every model's stream


def test_rows_out_of_order_are_still_said_against_the_reference_on_the_datas_rows(tmp_path: Path) -> None:
    w = weights()
    arrays, _ = greedy_sequences(w)
    order = np.random.default_rng(3).permutation(len(arrays["token"]))
    shuffled = {k: v[order] for k, v in arrays.items()}
    reference = run_model(decoder(tmp_path / "fp32.onnx", w), TensorData(dict(shuffled)), 64)
    (note,) = order_notes(shuffled, reference, {"hidden_out": "hidden"})
    assert note.startswith("the data's 'hidden' differs from the reference's own 'hidden_out' of the row before at ")
    in_order = run_model(tmp_path / "fp32.onnx", TensorData(dict(arrays)), 64)
    assert order_notes(arrays, in_order, {"hidden_out": "hidden"}) == []  # 59 sequence starts of 232 rows: a minority
