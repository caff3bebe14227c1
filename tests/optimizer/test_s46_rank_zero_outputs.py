"""An output declared rank 0 that answers [N, …] is built and deployed with the rank it answers (session 46:
PaddleOCR exports declare every output `[]`; ppocrv5_det's FP32 build crashed optimize with an IndexError, and
ppocrv5_cls's shipped INT8 build was refused by deploy: "rank differs: [] in the manifest, [batch, 2] in the model
file")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.deploy import deploy
from serving.model_config import parse_config


def _scalar_declared(path: Path) -> Path:
    """y = Relu(x @ w): answers (N, 6), declared rank 0 as PaddleOCR's exporter declares its outputs."""
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    model = helper.make_model(
        helper.make_graph(nodes, "scalar_declared", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_rank_zero_output_is_built_and_deployed_with_the_rank_it_answers(tmp_path: Path, precision: str) -> None:
    model = _scalar_declared(tmp_path / "scalar.onnx")
    data = tmp_path / "d.npz"
    np.savez(data, x=np.random.default_rng(1).standard_normal((64, 4)).astype(np.float32))
    out = tmp_path / "b"
    argv = ["optimize", str(model), "--calib", str(data), "--precision", precision, "--out", str(out)]
    if precision == "int8":  # the speed and evidence gates are not what this test judges
        argv += ["--eval", str(data), "--allow-slower", "--allow-thin-evidence"]
    assert main(argv) == 0
    manifest = Manifest.load(out)
    assert len(manifest.outputs[0].shape) == 2
    assert "declared rank 0, answered [8, 6]" in str(manifest.stages[0].get("sizes_fixed"))
    deploy(out, tmp_path / "repo", "m")  # refused before: "rank differs"
    [served] = parse_config(tmp_path / "repo" / "m" / "config.pbtxt")["output"]
    assert len(served["dims"]) == 1
