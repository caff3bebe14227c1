"""The manifest's shapes are the shipped graph's (session 46: a YOLO11n-pose output declared with the exporter's
symbolic names, resolved to [batch, 56, 8400] by fusion, was deployed as `dims: [-1, -1]`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.deploy import deploy
from serving.model_config import parse_config


def _symbolic_model(path: Path) -> Path:
    """y = Reshape(x @ w, [0, 1, 2] + [0, 2, 2]): (N, 3, 4), declared (N, 'y_dim_1', 'y_dim_2'); ONNX's shape
    inference cannot fold the Add, fusion does."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((4, 12)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([0, 1, 2], np.int64), "c1"),
        numpy_helper.from_array(np.array([0, 2, 2], np.int64), "c2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["c1", "c2"], ["s"]),
        helper.make_node("Reshape", ["h", "s"], ["y"]),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "y_dim_1", "y_dim_2"])
    model = helper.make_model(
        helper.make_graph(nodes, "symbolic", [x], [y], weights), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_sizes_fusion_resolves_are_fixed_in_the_manifest_and_the_config(tmp_path: Path) -> None:
    model = _symbolic_model(tmp_path / "symbolic.onnx")
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((40, 4)).astype(np.float32))
    out = tmp_path / "b"
    assert main(["optimize", str(model), "--calib", str(data), "--precision", "fp32", "--out", str(out)]) == 0
    dims = onnx.load(str(out / "model.onnx")).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims[1:]] == [3, 4]  # what the manifest must now say
    manifest = Manifest.load(out)
    assert manifest.outputs[0].shape == ("batch", 3, 4)
    assert manifest.inputs[0].shape == ("batch", 4)
    deploy(out, tmp_path / "repo", "m")
    [served] = parse_config(tmp_path / "repo" / "m" / "config.pbtxt")["output"]
    assert [int(d) for d in served["dims"]] == [3, 4]
