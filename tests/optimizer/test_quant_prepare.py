"""ORT's shape pre-processing on graphs whose fixed batch of 1 quantserve freed (Resize `sizes` → `scales`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from optimizer.batch_axis import free_unit_batch
from optimizer.quant_prepare import RAN, RAN_MERGED, prepare_for_quantization

PRE_PROCESSED = "onnx.quant.pre_process"


def _upsample_then_add(path: Path) -> onnx.ModelProto:
    """a [1,2,4,4] → Conv → Resize to sizes [1,2,8,8] → Add b [1,2,8,8]: the palm detector's pattern, small."""
    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(2, 2, 1, 1)).astype(np.float32), "w")
    sizes = numpy_helper.from_array(np.array([1, 2, 8, 8], np.int64), "sizes")
    nodes = [
        helper.make_node("Conv", ["a", "w"], ["c"], name="conv"),
        helper.make_node("Resize", ["c", "", "", "sizes"], ["r"], name="up", mode="nearest"),
        helper.make_node("Add", ["r", "b"], ["y"], name="join"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 2, 4, 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 8, 8]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 8, 8])],
        [weight, sizes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return model


def test_freed_batch_through_a_resize_is_still_pre_processed(tmp_path: Path) -> None:
    source = tmp_path / "fixed.onnx"
    freed, done = free_unit_batch(source, _upsample_then_add(source))
    assert done is not None and done.resizes  # the Resize now takes scales: its batch is floor(1.0*batch)
    onnx.save(freed, str(tmp_path / "freed.onnx"))
    outcome = prepare_for_quantization(tmp_path / "freed.onnx", tmp_path / "prepared.onnx")
    assert outcome == RAN_MERGED
    prepared = onnx.load(str(tmp_path / "prepared.onnx"))
    assert PRE_PROCESSED in {prop.key for prop in prepared.metadata_props}
    dims = {d.dim_param for v in prepared.graph.value_info for d in v.type.tensor_type.shape.dim if d.dim_param}
    assert dims == {"batch"}  # one symbol for the batch everywhere, nothing left unknown


def test_a_plain_graph_is_pre_processed_strictly(tmp_path: Path) -> None:
    _upsample_then_add(tmp_path / "fixed.onnx")
    assert prepare_for_quantization(tmp_path / "fixed.onnx", tmp_path / "prepared.onnx") == RAN


def test_a_graph_it_cannot_infer_names_the_node_it_stopped_at(tmp_path: Path) -> None:
    model = _upsample_then_add(tmp_path / "fixed.onnx")
    model.graph.node.insert(0, helper.make_node("Mystery", ["a"], ["m"], name="odd", domain="example.ops"))
    model.graph.node[-1].input[1] = "m"  # joined to the graph so shape inference must pass it
    model.opset_import.append(helper.make_opsetid("example.ops", 1))
    onnx.save(model, str(tmp_path / "odd.onnx"))
    outcome = prepare_for_quantization(tmp_path / "odd.onnx", tmp_path / "prepared.onnx")
    assert outcome.startswith("did not run: its symbolic shape inference failed at Mystery: odd (")
    prepared = onnx.load(str(tmp_path / "prepared.onnx"))
    assert PRE_PROCESSED not in {prop.key for prop in prepared.metadata_props}
    assert len(prepared.graph.node) == 4  # the model as given, for quantize_static to take without it
