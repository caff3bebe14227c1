"""A recurrent model served by a real tritonserver: `deploy` records its state pairs in the served config and
`evaluate` runs the held-out rows through the server as one stream, each model fed its own state, as `optimize`
checks the build (`optimizer.state_loop`); fed the data's FP32 state row by row, INT8 drift that builds up hid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from loadtest.accuracy_results import AccuracyReport
from optimizer.state_loop import StatePair, run_stream
from quantserve.cli import main

pytestmark = pytest.mark.e2e
X, H, C, ROWS = 8, 16, 4, 300


def _rnn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """h' = tanh(x W + h U), y = h' V: state 'state_out' fed back as 'state_in'; rows of one stream, its FP32 states."""
    rng = np.random.default_rng(0)
    w = (rng.normal(size=(X, H)) / np.sqrt(X)).astype(np.float32)
    u = (rng.normal(size=(H, H)) / np.sqrt(H) * 0.9).astype(np.float32)
    v = (rng.normal(size=(H, C)) / np.sqrt(H)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["a"]),
        helper.make_node("MatMul", ["state_in", "U"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["c"]),
        helper.make_node("Tanh", ["c"], ["state_out"]),
        helper.make_node("MatMul", ["state_out", "V"], ["y"]),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "rnn",
        [value("x", TensorProto.FLOAT, ["batch", X]), value("state_in", TensorProto.FLOAT, ["batch", H])],
        [value("y", TensorProto.FLOAT, ["batch", C]), value("state_out", TensorProto.FLOAT, ["batch", H])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (u, "U"), (v, "V"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    x = rng.normal(size=(ROWS, X)).astype(np.float32)
    h, states = np.zeros(H, np.float32), []
    for row in x:
        states.append(h.copy())
        h = np.tanh(row @ w + h @ u)
    return x, np.stack(states).astype(np.float32)


def test_evaluate_runs_a_recurrent_model_as_one_stream_through_the_server(
    tmp_path: Path, triton_server_factory: Callable[..., object]
) -> None:
    x, states = _rnn(tmp_path / "rnn.onnx")
    np.savez(tmp_path / "calib.npz", x=x, state_in=states)
    builds = {}
    for precision in ("fp32", "int8"):
        builds[precision] = tmp_path / "build" / precision
        flags = ["--keep-failing", "--skip-timing"] if precision == "int8" else []
        args = [
            "optimize",
            str(tmp_path / "rnn.onnx"),
            "--precision",
            precision,
            "--calib",
            str(tmp_path / "calib.npz"),
        ]
        assert main([*args, "--out", str(builds[precision]), *flags]) == 0
    pairs = [StatePair("state_out", "state_in")]
    arrays = {"x": x, "state_in": states}
    expected = {p: run_stream(builds[p] / "model.onnx", arrays, pairs) for p in builds}
    labels = expected["fp32"]["y"].argmax(axis=1)
    np.savez(tmp_path / "held.npz", x=x, state_in=states, labels=labels)
    for precision, build in builds.items():
        assert main(["deploy", str(build), "--repo", str(tmp_path / "repo"), "--name", f"rnn_{precision}"]) == 0
    config = (tmp_path / "repo" / "rnn_int8" / "config.pbtxt").read_text()
    assert 'key: "quantserve_state"' in config and 'string_value: "state_out=state_in"' in config
    server = triton_server_factory(tmp_path / "repo")
    out = tmp_path / "out"
    url = server.grpc_url  # type: ignore[attr-defined]
    args = ["evaluate", "--url", url, "--models", "rnn_fp32,rnn_int8", "--reference", "rnn_fp32"]
    main([*args, "--data", str(tmp_path / "held.npz"), "--out", str(out)])
    report = AccuracyReport.load(out / "accuracy.json")
    assert report.stream is not None and report.stream["pairs"] == [{"output": "state_out", "input": "state_in"}]
    assert report.output == "y" and report.stream["notes"] == []  # the state: a note, not an answer; rows in order
    variant = next(v for v in report.variants if v.model == "rnn_int8")
    stream_agreement = float(np.mean(expected["int8"]["y"].argmax(axis=1) == labels))
    assert variant.accuracy == pytest.approx(stream_agreement)  # the served stream is the local stream
    assert any("state 'state_out' (fed back as 'state_in') has cosine" in note for note in variant.notes)
