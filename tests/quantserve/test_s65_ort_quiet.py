"""ONNX Runtime's own warnings stay off the terminal in every quantserve process (session 65, probes 65C and 65D).

`deploy` of a PaddleOCR table model printed ORT's `[W:onnxruntime:, graph.cc:128 MergeShapeInfo] Error merging
shape info …` raw on stderr (its session left the severity to ORT's default logger), and deploy, infer and evaluate
of a tf2onnx ESRGAN printed "`tf_half_pixel_for_nn` is deprecated", which ORT's default logger prints at kernel
creation whatever the session's own `log_severity_level`. Only `optimize` had lowered the default logger. The model
here makes ORT say both when it loads; the commands run as a user runs them, in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from quantserve.artifact import Manifest, TensorSpec

ROOT = Path(__file__).resolve().parents[2]
ORT_WARNING = "[W:onnxruntime"
NN_MODE = "tf_half_pixel_for_nn"  # deprecated since opset 13: tf2onnx writes it


def _branch(name: str, value: float) -> object:
    """An If branch whose middle tensor is declared a scalar but holds [1]: ORT's MergeShapeInfo warns at load."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Constant", [], [f"{name}_c"], value=numpy_helper.from_array(np.array([value], np.float32))),
        helper.make_node("Identity", [f"{name}_c"], [f"{name}_mid"]),
        helper.make_node("Identity", [f"{name}_mid"], [f"{name}_out"]),
    ]
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [1])
    mid = helper.make_tensor_value_info(f"{name}_mid", TensorProto.FLOAT, [])
    return helper.make_graph(nodes, name, [], [out], value_info=[mid])


def write_warning_model(path: Path) -> None:
    """x [batch, 1, 2, 2] → y [batch, 1, 4, 4]: a nearest Resize with tf2onnx's deprecated `tf_half_pixel_for_nn`
    (the default logger's warning), scaled by an If whose branches carry a conflicting value_info (the session's)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest", coordinate_transformation_mode=NN_MODE),
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.array(0, np.float32))),
        helper.make_node("Greater", ["total", "zero"], ["positive"]),
        helper.make_node("If", ["positive"], ["k"], then_branch=_branch("then", 1.0), else_branch=_branch("else", 2.0)),
        helper.make_node("Mul", ["up", "k"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "warns",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 4, 4])],
        initializer=[scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def run_python(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )


def test_the_model_makes_onnx_runtime_warn_where_nothing_quiets_it(tmp_path: Path) -> None:
    """The premise: a bare session of this model prints both warnings on stderr."""
    write_warning_model(tmp_path / "model.onnx")
    code = "import onnxruntime as ort; ort.InferenceSession('model.onnx', providers=['CPUExecutionProvider'])"
    done = run_python("-c", code, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "MergeShapeInfo" in done.stderr and "tf_half_pixel_for_nn" in done.stderr


def test_deploy_keeps_onnx_runtimes_warnings_off_the_terminal(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    write_warning_model(build / "model.onnx")
    inputs = [TensorSpec("x", "float32", ("batch", 1, 2, 2))]
    outputs = [TensorSpec("y", "float32", ("batch", 1, 4, 4))]
    Manifest("warns", inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(build)
    done = run_python(
        "-m", "quantserve", "deploy", str(build), "--repo", str(tmp_path / "repo"), "--name", "x", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "deployed" in done.stdout
    assert ORT_WARNING not in done.stderr, done.stderr


def test_a_timing_child_keeps_onnx_runtimes_warnings_off_its_stderr(tmp_path: Path) -> None:
    """The children's stderr is read back: its last line names a failed child's reason, not ORT's warning."""
    write_warning_model(tmp_path / "model.onnx")
    np.savez(tmp_path / "row.npz", x=np.ones((1, 1, 2, 2), np.float32))
    done = run_python("-m", "optimizer.timing_rows", "model.onnx", "row.npz", "out.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.json").exists()
    assert ORT_WARNING not in done.stderr, done.stderr
