"""`deploy --ragged-batching pad` refuses a max or a min over the sequence (session 43): zero padding hides inside
normal noise (the max of five normals is above 0), so a max-pool over frame log-probabilities (all negative) passed
the check and then, served with pad under 16 clients, changed 26–43 of 64 answers. The check now also runs rows all
negative and all positive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Artifact, Manifest, TensorSpec
from quantserve.errors import QuantserveError
from serving.deploy import load_artifact
from serving.ragged_check import check_pad_exact


def pooled_build(directory: Path, reduce: str) -> Artifact:
    """x [batch, time, 4] → `reduce` over time → MatMul: a pooled frame classifier."""
    weights = numpy_helper.from_array(np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32), "W")
    nodes = [
        helper.make_node(reduce, ["x", "time_axis"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "W"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "pooled",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[weights, numpy_helper.from_array(np.array([1], np.int64), "time_axis")],
    )
    directory.mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), directory / "model.onnx")
    inputs = [TensorSpec("x", "float32", ("batch", "time", 4))]
    outputs = [TensorSpec("logits", "float32", ("batch", 3))]
    Manifest("pooled", inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return load_artifact(directory)


@pytest.mark.parametrize("reduce", ["ReduceMax", "ReduceMin"])
def test_a_max_or_min_over_time_is_refused_with_pad(tmp_path: Path, reduce: str) -> None:
    artifact = pooled_build(tmp_path / "build", reduce)
    with pytest.raises(QuantserveError, match=r"--ragged-batching pad changes model 'm' output 'logits'"):
        check_pad_exact(artifact, "m")
