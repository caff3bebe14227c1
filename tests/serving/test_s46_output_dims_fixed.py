"""An output's -1 dims that a rebuilt version fixes are no interface change; an input's still are (session 46:
optimize now writes the sizes fusion resolved, and redeploying YOLO11n-pose, [-1, 56, 8400], over its version
deployed with [-1, -1, -1] was refused)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from quantserve.cli import main
from serving.config_changes import interface_changes
from serving.deploy import deploy
from serving.model_config import parse_config


def _config(kind: str, dims: list[int]) -> dict:
    tensor = {"name": "t", "data_type": "TYPE_FP32", "dims": dims}
    return {"name": "m", "max_batch_size": 8, kind: [tensor]}


def test_fixing_an_output_axis_is_no_change_fixing_an_input_axis_is() -> None:
    served = {"max_batch_size": 8, "output": [{"name": "t", "data_type": "TYPE_FP32", "dims": ["-1", "-1"]}]}
    assert interface_changes(served, _config("output", [56, 8400])) == []
    assert interface_changes(served, _config("output", [56, 10])) == []
    changed = {"max_batch_size": 8, "output": [{"name": "t", "data_type": "TYPE_FP32", "dims": ["56", "8400"]}]}
    assert interface_changes(changed, _config("output", [56, 10])) == ["output 't' dims [-1, 56, 8400] → [-1, 56, 10]"]
    assert interface_changes(served, _config("output", [56])) == ["output 't' dims [-1, -1, -1] → [-1, 56]"]
    inputs = {"max_batch_size": 8, "input": [{"name": "t", "data_type": "TYPE_FP32", "dims": ["-1"]}]}
    assert interface_changes(inputs, _config("input", [4])) == ["input 't' dims [-1, -1] → [-1, 4]"]


def _model(path: Path) -> Path:
    """y = x @ w: (N, 3)."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mlp", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_build_fixing_an_output_deploys_over_the_version_that_left_it_dynamic(tmp_path: Path) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((40, 4)).astype(np.float32))
    new = tmp_path / "new"
    model = str(_model(tmp_path / "mlp.onnx"))
    assert main(["optimize", model, "--calib", str(data), "--precision", "fp32", "--out", str(new)]) == 0
    old = tmp_path / "old"  # the same build as an older optimize recorded it: the exporter's name for axis 1
    shutil.copytree(new, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["outputs"][0]["shape"] = ["batch", "y_dim_1"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    repo = tmp_path / "repo"
    deploy(old, repo, "m")
    assert [int(d) for d in parse_config(repo / "m" / "config.pbtxt")["output"][0]["dims"]] == [-1]
    deploy(new, repo, "m")
    assert [int(d) for d in parse_config(repo / "m" / "config.pbtxt")["output"][0]["dims"]] == [3]
    assert (repo / "m" / "2").is_dir()
