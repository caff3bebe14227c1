"""What the INT8 stages hold in memory: the model's weights as few times at once as the tools allow.

Measured on a 302 MB MLP exported from PyTorch (`Linear` → Gemm with its weight transposed; BENCHMARKS.md, "Peak
memory"): onnxslim's garbage held 2 × the weights through the INT8 stage, and `quantize_dynamic` held four copies
of a Gemm model's weights. Here on a tiny Gemm MLP: the objects left alive, and the model ORT is handed.
"""

from __future__ import annotations

import gc
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer import onnx_files
from optimizer.export import manifest_from_onnx
from optimizer.fuse import FuseGraph
from optimizer.gemm_rewrite import gemms_as_matmuls
from optimizer.int8_schemes import DynamicScheme
from optimizer.tensor_ranges import collect_ranges
from quantserve.artifact import Artifact
from quantserve.data import TensorData

WIDTHS = (16, 32, 32, 4)


def _gemm_mlp(path: Path) -> Artifact:
    """Linear layers as torch exports them: Gemm(x, W, b, transB=1), W of shape (out, in), ReLUs between."""
    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for index, (rows, cols) in enumerate(itertools.pairwise(WIDTHS)):
        weights += [
            numpy_helper.from_array(rng.standard_normal((cols, rows)).astype(np.float32), f"fc{index}.weight"),
            numpy_helper.from_array(rng.standard_normal(cols).astype(np.float32), f"fc{index}.bias"),
        ]
        last = index == len(WIDTHS) - 2
        out = "logits" if last else f"g{index}"
        inputs = [previous, f"fc{index}.weight", f"fc{index}.bias"]
        nodes.append(helper.make_node("Gemm", inputs, [out], name=f"fc{index}", transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [out], [f"h{index}"], name=f"relu{index}"))
            previous = f"h{index}"
    graph = helper.make_graph(
        nodes,
        "gemm_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTHS[0]])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", WIDTHS[-1]])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return Artifact(path, manifest_from_onnx(model, path.stem))


def _quantize_dynamic_directly(source: Path, out: Path) -> None:
    """ORT's quantize_dynamic as DynamicScheme calls it, on the model itself."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(out),
        per_channel=True,
        reduce_range=False,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=list(DynamicScheme().op_types),
        nodes_to_exclude=[],
        extra_options={"MatMulConstBOnly": True},
    )


@pytest.mark.parametrize("large", [False, True])
def test_dynamic_int8_hands_ort_matmuls_and_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    if large:  # the weights in an external file, as a model of 1 GiB or more is saved
        monkeypatch.setattr(onnx_files, "EXTERNAL_AT", 256)
        monkeypatch.setattr(onnx_files, "INLINE_BELOW", 64)
    fused = _gemm_mlp(tmp_path / "fp32.onnx")
    if large:
        onnx_files.save(onnx.load(str(fused.path)), fused.path)
    _quantize_dynamic_directly(fused.path, tmp_path / "direct.onnx")
    import onnxruntime.quantization

    handed: list[onnx.ModelProto] = []
    quantize = onnxruntime.quantization.quantize_dynamic

    def spy(model_input: str, *args: Any, **kwargs: Any) -> None:
        handed.append(onnx.load(model_input))
        quantize(model_input, *args, **kwargs)

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", spy)
    (tmp_path / "work").mkdir()
    built = DynamicScheme().build(fused, [], tmp_path / "work" / "dynamic.onnx")

    assert built.read_bytes() == (tmp_path / "direct.onnx").read_bytes()
    (model,) = handed
    assert "Gemm" not in {n.op_type for n in model.graph.node}  # ORT's own rewrite kept both weights of each
    names = [t.name for t in model.graph.initializer]
    assert not [n for n in names if n.endswith(".weight")]  # only the transposed weights: one copy each
    assert sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer) == sum(
        numpy_helper.to_array(t).nbytes for t in onnx.load(str(fused.path)).graph.initializer
    )


def test_a_model_without_transposed_gemms_is_handed_as_it_is(tmp_path: Path) -> None:
    art = _gemm_mlp(tmp_path / "fp32.onnx")
    model = onnx.load(str(art.path))
    for node in model.graph.node:
        del node.attribute[:]  # Gemm(x, W, b) with W as (in, out): nothing to transpose
    for tensor in model.graph.initializer:
        if tensor.name.endswith(".weight"):
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).T.copy(), tensor.name))
    onnx.save(model, str(art.path))
    assert gemms_as_matmuls(art.path, tmp_path / "matmul.onnx") == art.path
    assert not (tmp_path / "matmul.onnx").exists()


def _slim_graphs() -> list[object]:
    """onnxslim's graphs and constants (its copies of the weights) alive now (its patterns and loggers stay)."""
    return [
        o
        for o in gc.get_objects()
        if str(getattr(type(o), "__module__", "")).startswith("onnxslim")  # a str: some types' is a descriptor
        and type(o).__name__ in ("Graph", "Constant", "LazyValues")
    ]


def test_fusing_leaves_no_graph_of_onnxslim_alive(tmp_path: Path) -> None:
    """onnxslim's graphs are reference cycles holding the model's weights: collected before the stage returns,
    not whenever Python's own collection comes round (collection is off here, as it often is not due)."""
    art = _gemm_mlp(tmp_path / "exported.onnx")
    feeds = {"x": np.ones((4, WIDTHS[0]), np.float32)}
    gc.collect()
    earlier = {id(o) for o in _slim_graphs()}  # other tests' still referenced (a full run held 13): not this fuse's
    gc.disable()
    try:
        FuseGraph(feeds)(art, tmp_path / "fused.onnx")
        left = [o for o in _slim_graphs() if id(o) not in earlier]
    finally:
        gc.enable()
    assert not left, f"{len(left)} onnxslim objects alive after fusing, e.g. {type(left[0]).__name__}"


def test_the_calibrator_keeps_no_model_beside_its_session(tmp_path: Path) -> None:
    """ORT's calibrator keeps its augmented model (all the weights) though only its session runs it afterwards."""
    art = _gemm_mlp(tmp_path / "fp32.onnx")
    data = TensorData({"x": np.random.default_rng(1).standard_normal((8, WIDTHS[0])).astype(np.float32)})
    kept: list[Any] = []
    import optimizer.tensor_ranges as tensor_ranges

    make = tensor_ranges._calibrator

    def spy(*args: Any, **kwargs: Any) -> Any:
        calibrator = make(*args, **kwargs)
        kept.append(calibrator)
        return calibrator

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tensor_ranges, "_calibrator", spy)
        ranges, _ = collect_ranges(art.path, data, "minmax", (), {}, 4, tmp_path)
    assert ranges  # calibrated all the same
    assert [c.model for c in kept] == [None]


def test_a_gemm_kept_fp32_stays_fp32_in_the_matmul_form(tmp_path: Path) -> None:
    """ORT's rewrite renames Gemm `fc0` to MatMul `fc0_MatMul`: a Gemm the search keeps FP32 must stay so there."""
    fused = _gemm_mlp(tmp_path / "mlp.onnx")
    out = DynamicScheme().build(fused, ["fc0"], tmp_path / "int8.onnx")
    nodes = {node.name: node.op_type for node in onnx.load(str(out)).graph.node}
    assert nodes.get("fc0_MatMul") == "MatMul", nodes  # FP32, as asked
    assert "fc1_MatMul" not in nodes or nodes["fc1_MatMul"] != "MatMul", nodes  # the others INT8
    assert not any(name.startswith("fc0") and "Integer" in op for name, op in nodes.items()), nodes


def test_a_model_whose_only_gemm_makes_the_output_ships_no_int8(tmp_path: Path) -> None:
    """Its one compute node is the graph output, kept FP32: the dynamic candidate then holds a plain MatMul (renamed
    `fc0_MatMul`), which had counted as INT8 — an all-FP32 model recorded as "INT8, 100 % of MACs" and shipped."""
    from optimizer.compute_share import quantized_nodes

    art = _gemm_mlp(tmp_path / "fp32.onnx")
    out = DynamicScheme().build(art, ["fc0", "fc1", "fc2"], tmp_path / "int8.onnx")
    assert quantized_nodes(onnx.load(str(art.path)), onnx.load(str(out))) == []
    out = DynamicScheme().build(art, ["fc2"], tmp_path / "int8-2.onnx")
    assert quantized_nodes(onnx.load(str(art.path)), onnx.load(str(out))) == ["fc0", "fc1"]
