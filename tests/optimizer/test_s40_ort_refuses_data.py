"""Data ONNX Runtime refuses as invalid (a token id past an embedding table) is one line naming ORT's reason, not a
traceback from verification (session 40: genderfluid-tiny's hashed n-gram ids)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.cli import main


def _lookup_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    table = numpy_helper.from_array(rng.standard_normal((1000, 64)).astype(np.float32), "E")
    weights = numpy_helper.from_array(rng.standard_normal((64, 4)).astype(np.float32), "W")
    axes = numpy_helper.from_array(np.array([1], np.int64), "ax")
    nodes = [
        helper.make_node("Gather", ["E", "ids"], ["e"]),
        helper.make_node("ReduceMean", ["e", "ax"], ["m"], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["logits"]),
    ]
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 16])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph(nodes, "lookup", [ids], [logits], [table, weights, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, path)


def test_an_id_past_the_table_in_the_held_out_data_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lookup_model(tmp_path / "m.onnx")
    ids = np.random.default_rng(1).integers(0, 1000, (200, 16)).astype(np.int64)
    np.savez(tmp_path / "calib.npz", ids=ids[:64])
    bad = ids[64:].copy()
    bad[5, 3] = 5000
    np.savez(tmp_path / "heldout.npz", ids=bad)
    argv = ["optimize", str(tmp_path / "m.onnx"), "--calib", str(tmp_path / "calib.npz")]
    code = main([*argv, "--eval", str(tmp_path / "heldout.npz"), "--precision", "fp32", "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "ONNX Runtime refused the data: Gather node" in err and "idx=5000" in err
    assert "Traceback" not in err and not (tmp_path / "b").exists()
