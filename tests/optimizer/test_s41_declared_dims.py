"""An output size the model declares fixed but does not answer is declared dynamic in the build (session 41:
PP-OCRv2's recognizer declares [-1, 25, 6625] and answers [N, 80, 6625]; the 25 went into the served config and
every request was refused)."""

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


def _stale_model(path: Path) -> Path:
    """y = Relu(x) over (N, 80), declared (N, 25)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 80])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 25])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "stale", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_stale_declared_size_is_served_dynamic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _stale_model(tmp_path / "stale.onnx")
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(0).standard_normal((40, 80)).astype(np.float32))
    out = tmp_path / "b"
    assert main(["optimize", str(model), "--calib", str(data), "--precision", "fp32", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "output 'y' axis 1 declared 25, answered 80 on the data: declared dynamic in the build" in err
    manifest = Manifest.load(out)
    assert manifest.outputs[0].shape == ("batch", "y_dim1")
    for name in ("model.onnx", "fp32.onnx"):
        dims = onnx.load(str(out / name)).graph.output[0].type.tensor_type.shape.dim
        assert dims[1].dim_param == "y_dim1" and not dims[1].HasField("dim_value")
    deploy(out, tmp_path / "repo", "m")
    [served] = parse_config(tmp_path / "repo" / "m" / "config.pbtxt")["output"]
    assert [int(d) for d in served["dims"]] == [-1]
