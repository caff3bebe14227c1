"""An --unbatched build declares dynamic an output size the model declares fixed but does not answer, as a batched
build does (session 41): pythainlp's thai2rom decoder (batch fixed at 1) declares its attention weights [1, 11] and
answers [1, 13]; its --unbatched build kept [1, 11] in the manifest and config.pbtxt, and the served model failed
every request, FP32 or INT8 (session 62)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.deploy import deploy
from serving.model_config import parse_config


def _stale_unbatched(path: Path) -> Path:
    """y = Relu(x) over x [1, n], y declared [1, 3]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "stale", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_unbatched_stale_declared_size_is_served_dynamic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _stale_unbatched(tmp_path / "stale.onnx")
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32))
    out = tmp_path / "b"
    args = ["optimize", str(model), "--calib", str(data), "--precision", "fp32", "--unbatched", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "output 'y' axis 1 declared 3, answered 5 on the data: declared dynamic in the build" in err, err
    manifest = Manifest.load(out)
    assert manifest.outputs[0].shape[1] == "y_dim1", manifest.outputs
    deploy(out, tmp_path / "repo", "m")
    [served] = parse_config(tmp_path / "repo" / "m" / "config.pbtxt")["output"]
    assert int(served["dims"][-1]) == -1, served
