"""`evaluate` on a served model with TopK in its graph scores its first index against the labels (session 50).

The headline took the sorted values beside the indices for class scores, and labels of the model's classes were
refused as "outside 0..1, the 2 classes" (TopK's K), though the indices answer the class.
"""

from __future__ import annotations

from pathlib import Path

import loadtest_models as models
import numpy as np
import pytest

from loadtest.evaluator import evaluate_accuracy
from optimizer.drift_budget import DriftBudget
from quantserve.artifact import Manifest, TensorSpec

pytestmark = pytest.mark.e2e
K = 2


def _top_k_build(directory: Path, weights: dict[str, np.ndarray]) -> Path:
    """The MLP with TopK(2) over its logits: `values` (batch, 2) sorted, `indices` (batch, 2) int64."""
    import onnx
    from onnx import TensorProto, helper

    directory.mkdir(parents=True, exist_ok=True)
    mlp = onnx.load(str(models.write_mlp_onnx(directory / "mlp.onnx", weights)))
    graph = mlp.graph
    graph.node.append(helper.make_node("TopK", [graph.output[0].name, "k"], ["values", "indices"], axis=-1))
    graph.initializer.append(helper.make_tensor("k", TensorProto.INT64, [1], [K]))
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", K]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch", K]),
        ]
    )
    onnx.checker.check_model(mlp)
    onnx.save(mlp, str(directory / "model.onnx"))
    (directory / "mlp.onnx").unlink()
    outputs = [TensorSpec("values", "float32", ("batch", K)), TensorSpec("indices", "int64", ("batch", K))]
    Manifest(directory.name, models.INPUTS, outputs, target="embedded", files={"model": "model.onnx"}).save(directory)
    return directory


def test_a_top_k_model_is_scored_by_its_first_index(triton_server_factory, tmp_path: Path) -> None:
    from serving.deploy import deploy

    weights = models.mlp_weights()
    repo = tmp_path / "repo"
    deploy(_top_k_build(tmp_path / "build", weights), repo, "topk", max_batch=32)
    server = triton_server_factory(repo)
    data = models.labeled_data(200, weights, seed=4)
    report = evaluate_accuracy(server.grpc_url, ["topk"], "topk", data, budget=DriftBudget())
    assert report.output == "indices"
    (variant,) = report.variants
    want = models.reference_logits(data.arrays["x"], weights).argmax(axis=1)
    assert variant.accuracy == pytest.approx(float(np.mean(want == data.labels)))
    assert variant.top1_agreement == 1.0 and variant.cosine_mean is None
