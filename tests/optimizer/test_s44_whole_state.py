"""A stateful model built --unbatched from whole requests (a row per utterance: `data[i]` fed whole, no sample axis)
is verified as one stream fed its own state with each row fed whole too. faster-whisper's Silero VAD (utterances of
(125, 576) frames, h and c (1, 1, 128) paired with hn and cn by name) crashed `optimize --precision int8 --unbatched`
after its calibration: "onnxruntime: input 'input' has shape (1, 125, 576), expected ['batch', 576]" (session 44)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

from optimizer.state_loop import StatePair, run_stream
from quantserve.cli import main
from quantserve.errors import QuantserveError

T, D, H, C = 12, 16, 32, 4


def _model(path: Path, grows: bool = False) -> Path:
    """x (T, D) and h (1, H) → prob (1, C) and hn (1, H): hn = 0.9·h + mean over frames of x·W."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("MatMul", ["h", "A"], ["carried"]),
        helper.make_node("MatMul", ["x", "W"], ["frames"]),
        helper.make_node("ReduceMean", ["frames"], ["fresh"], axes=[0], keepdims=1),
        helper.make_node("Add", ["carried", "fresh"], ["hn0"]),
        helper.make_node("Concat", ["hn0", "hn0"], ["hn"], axis=0)
        if grows
        else helper.make_node("Relu", ["hn0"], ["hn"]),
        helper.make_node("MatMul", ["hn0", "V"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=-1),
    ]
    weights = {"A": np.eye(H) * 0.9, "W": rng.standard_normal((D, H)) * 0.3, "V": rng.standard_normal((H, C))}
    graph = helper.make_graph(
        nodes,
        "vad",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", D]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, H]),
        ],
        [
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, C]),
            helper.make_tensor_value_info("hn", TensorProto.FLOAT, [None, H]),
        ],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save(model, path)
    return path


def _data(path: Path, rows: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.standard_normal((rows, T, D)).astype(np.float32), h=np.zeros((rows, 1, H), np.float32))
    return path


def test_the_stream_feeds_each_whole_row_and_its_state(tmp_path: Path) -> None:
    model = _model(tmp_path / "vad.onnx")
    arrays = dict(np.load(_data(tmp_path / "d.npz", 5, 1)))
    got = run_stream(model, arrays, [StatePair("hn", "h")], whole=True)
    assert got["prob"].shape == (5, C) and got["hn"].shape == (5, H)
    state = np.zeros((1, H), np.float32)  # by hand: each row's state the previous row's hn
    for row in range(5):
        state = np.maximum(0.9 * state + (arrays["x"][row] @ _weights(model)).mean(axis=0, keepdims=True), 0)
        assert np.allclose(got["hn"][row], state[0], atol=1e-5)


def _weights(model: Path) -> np.ndarray:
    import onnx

    return next(numpy_helper.to_array(t) for t in onnx.load(str(model)).graph.initializer if t.name == "W")


def test_a_growing_state_of_whole_rows_is_refused_in_one_line(tmp_path: Path) -> None:
    model = _model(tmp_path / "grows.onnx", grows=True)
    arrays = dict(np.load(_data(tmp_path / "d.npz", 3, 1)))
    with pytest.raises(
        QuantserveError, match=r"state hn=h: output 'hn' came back shaped \(2, 32\), input 'h' takes \(1, 32\)"
    ):
        run_stream(model, arrays, [StatePair("hn", "h")], whole=True)


def test_optimize_unbatched_whole_rows_with_a_paired_state_is_verified_as_a_stream(tmp_path: Path) -> None:
    model = _model(tmp_path / "vad.onnx")
    calib, held_out = _data(tmp_path / "calib.npz", 64, 1), _data(tmp_path / "eval.npz", 60, 2)
    argv = ["optimize", str(model), "--calib", str(calib), "--eval", str(held_out), "--out", str(tmp_path / "b")]
    code = main([*argv, "--precision", "int8", "--unbatched", "--skip-timing", "--keep-failing"])
    assert code == 0
    loop = json.loads((tmp_path / "b" / "manifest.json").read_text())["verification"]["closed_loop"]
    assert loop["pairs"] == [{"input": "h", "output": "hn"}] and loop["rows"] == 60
