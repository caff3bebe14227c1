"""examples.in_graph_answers: a classifier's ArgMax or TopK added after its class scores, as exporters bake them in."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from examples.in_graph_answers import with_answer


def _classifier() -> onnx.ModelProto:
    weights = numpy_helper.from_array(np.random.default_rng(0).normal(size=(6, 12)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["scores"])],
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 12])],
        [weights],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("kind", ["argmax", "both", "topk"])
def test_each_answer_is_the_scores_own(kind: str) -> None:
    model = with_answer(_classifier(), kind, k=3)
    x = np.random.default_rng(1).normal(size=(5, 6)).astype(np.float32)
    scores = x @ numpy_helper.to_array(model.graph.initializer[0])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    got = dict(zip(names, session.run(None, {"x": x}), strict=True))
    expected = {"argmax": ["class_id"], "both": ["scores", "class_id"], "topk": ["top_scores", "top_ids"]}[kind]
    assert names == expected
    if "class_id" in got:
        assert np.array_equal(got["class_id"], scores.argmax(axis=1))
    if "top_ids" in got:
        assert np.array_equal(got["top_ids"], np.argsort(-scores, axis=1)[:, :3])
        assert np.allclose(got["top_scores"], -np.sort(-scores, axis=1)[:, :3], atol=1e-5)
