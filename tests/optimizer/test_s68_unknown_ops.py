"""A model holding ops ONNX Runtime has no kernel for names each op whole and the outputs free of them.

MediaPipe's face mesh with attention, converted from TFLite by tf2onnx, keeps MediaPipe's own ops as nodes of the
default domain (TFL_Landmarks2TransformMatrix, TFL_TransformTensorBilinear, TFL_TransformLandmarks). `optimize`
refused in one line cut at 240 characters, inside the op's name ("No Op registered for TFL_Landmarks2Tr)"), with no
way out; its face-flag output does not depend on those ops, and a model cut to such outputs loads.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.cli import main

OP = "TFL_Landmarks2TransformMatrixWithAttentionV2"  # longer than 40 characters with its node's inputs before it
NODE = "landmarks_to_transform_matrix_with_attention_v2_2"


def _model(path: Path, domain: str, batch: int | str) -> Path:
    """x · w → relu → the unknown op → 'matrix'; relu → sigmoid → 'face_flag' (free of it)."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="mm0"),
        helper.make_node("Relu", ["m"], ["r"], name="relu0"),
        helper.make_node(OP, ["r"], ["matrix"], name=NODE, domain=domain),
        helper.make_node("Sigmoid", ["r"], ["face_flag"], name="sig0"),
    ]
    weight = numpy_helper.from_array(np.ones((8, 8), np.float32) / 8, "w")
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 8])],
        [
            helper.make_tensor_value_info("matrix", TensorProto.FLOAT, [batch, 8]),
            helper.make_tensor_value_info("face_flag", TensorProto.FLOAT, [batch, 8]),
        ],
        [weight],
    )
    opsets = [helper.make_opsetid("", 15)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    np.savez(path.with_suffix(".npz"), x=np.random.default_rng(0).random((16, 8), np.float32))
    return path


@pytest.mark.parametrize(
    ("domain", "batch"),
    [("", 1), ("com.mediapipe", "N"), ("", "N")],
    ids=[
        "default-domain-batch-1-as-tf2onnx-writes-it",
        "custom-domain-dynamic-batch",
        "default-domain-dynamic-batch-refused-by-the-checker-first",
    ],
)
def test_an_unknown_op_is_named_whole_with_the_outputs_free_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], domain: str, batch: int | str
) -> None:
    path = _model(tmp_path / "mesh.onnx", domain, batch)
    out = tmp_path / "build" / "mesh"
    assert main(["optimize", str(path), "--calib", str(path.with_suffix(".npz")), "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0, line
    assert f"no kernel for op {OP} (domain '{domain}', 1 node '{NODE}')" in line, line
    assert "output 'face_flag' depends on none of them" in line, line
    cut = tmp_path / "mesh_cut.onnx"
    assert f"onnx.utils.extract_model('{path}', '{cut}', ['x'], ['face_flag'], check_model=False)" in line, line
    assert "'matrix'" not in line.split("depends on none")[0].split(";")[-1], line
    assert not out.exists() and not [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != tmp_path]


def test_the_advised_cut_loads_and_optimizes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The advice is true: the call the refusal prints, run as printed, writes a model that builds."""
    path = _model(tmp_path / "mesh.onnx", "", 1)
    assert main(["optimize", str(path), "--calib", str(path.with_suffix(".npz")), "--out", str(tmp_path / "b")]) == 2
    call = re.search(r"onnx\.utils\.extract_model\((.*?)\) \(or", capsys.readouterr().err)
    assert call is not None
    args = ast.literal_eval(f"({call[1].removesuffix(', check_model=False')},)")
    onnx.utils.extract_model(*args, check_model=False)  # the call advised
    cut = Path(args[1])
    out = tmp_path / "build"
    argv = ["optimize", str(cut), "--calib", str(path.with_suffix(".npz")), "--out", str(out), "--skip-timing"]
    assert main([*argv, "--precision", "fp32"]) == 0
    assert out.exists()


def test_every_output_behind_the_op_says_no_part_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _model(tmp_path / "mesh.onnx", "com.mediapipe", "N")
    model = onnx.load(str(path))
    del model.graph.output[1]  # only 'matrix', behind the unknown op
    onnx.save(model, str(path))
    assert main(["optimize", str(path), "--calib", str(path.with_suffix(".npz")), "--out", str(tmp_path / "b")]) == 2
    line = capsys.readouterr().err.strip()
    assert f"no kernel for op {OP}" in line and "every output depends on them" in line, line
    assert not (tmp_path / "b").exists()
