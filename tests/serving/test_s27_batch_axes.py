"""A build whose input has an axis 0 that is not the batch is not deployed batched.

Before: a hand-made build with `y` ("k", 4) beside `x` ("batch", 8) (the model sums y's rows) was deployed with
max_batch_size 32 and y dims [4], and Triton then stacked 32 requests' rows into one y: served answers came per
32-request chunk (max difference 7.97 from ONNX Runtime on the whole file). Likewise a model file whose y axis 0 is
fixed at 4 under a manifest that names it "batch". With --max-batch 0 each is deployed as it is, axis 0 in dims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.artifact import Dim, Manifest, TensorSpec
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_config import parse_config

AS_IS = "deploy it with --max-batch 0 (each request served as it comes), or re-export it with the batch first"


def two_input_build(folder: Path, graph_y: tuple[Dim, ...], manifest_y: tuple[Dim, ...]) -> Path:
    """probs = x @ W + (the sum of y's rows): x ("batch", 8), y of the shapes given (graph, manifest)."""
    weights = np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("ReduceSum", ["y", "axes"], ["ys"], keepdims=1),
            helper.make_node("Add", ["xw", "ys"], ["probs"]),
        ],
        "two",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, list(graph_y)),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.array([0], np.int64), "axes")],
    )
    folder.mkdir(parents=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "model.onnx")
    inputs = [TensorSpec("x", "float32", ("batch", 8)), TensorSpec("y", "float32", manifest_y)]
    outputs = [TensorSpec("probs", "float32", ("batch", 4))]
    Manifest("two", inputs, outputs, target="embedded", files={"model": "model.onnx"}).save(folder)
    return folder


def y_dims(repo: Path) -> list[int]:
    config = parse_config(repo / "two" / "config.pbtxt")
    return [int(d) for d in next(t for t in config["input"] if t["name"] == "y")["dims"]]


def test_an_input_whose_axis_0_has_another_name_is_not_batched(tmp_path: Path) -> None:
    build = two_input_build(tmp_path / "k", ("k", 4), ("k", 4))
    with pytest.raises(QuantserveError) as refused:
        deploy(build, tmp_path / "repo", "two")
    assert str(refused.value) == (
        "model 'two': input 'y' has axis 0 'k', not the batch axis 'batch' of input 'x', and Triton batches "
        f"requests along axis 0 of every input, so it cannot batch this model; {AS_IS}"
    )
    assert not (tmp_path / "repo" / "two").exists()
    deploy(build, tmp_path / "repo", "two", max_batch=0)
    assert y_dims(tmp_path / "repo") == [-1, 4]


@pytest.mark.parametrize("manifest_y", [(4, 4), ("batch", 4)])
def test_an_input_whose_axis_0_is_fixed_in_the_model_file_is_not_batched(
    tmp_path: Path, manifest_y: tuple[Dim, ...]
) -> None:
    build = two_input_build(tmp_path / "fixed", (4, 4), manifest_y)
    with pytest.raises(QuantserveError) as refused:
        deploy(build, tmp_path / "repo", "two", max_batch=8)
    assert str(refused.value) == (
        f"{build / 'model.onnx'}: input 'y' has axis 0 fixed at 4 in the model file, so Triton cannot batch requests "
        f"along it; {AS_IS}"
    )
    deploy(build, tmp_path / "repo", "two", max_batch=0)
    assert y_dims(tmp_path / "repo") == [-1 if manifest_y[0] == "batch" else 4, 4]


def test_a_manifest_input_with_a_fixed_axis_0_is_named(tmp_path: Path) -> None:
    """The manifest alone (a target whose model file is not read): the input and its axis are named."""
    from serving.batch_axes import check_batch_axes

    manifest = Manifest("two", [TensorSpec("x", "float32", ("n", 8)), TensorSpec("y", "float32", (4, 4))], [])
    with pytest.raises(QuantserveError) as refused:
        check_batch_axes(manifest)
    assert str(refused.value).startswith("model 'two': input 'y' has axis 0 fixed at 4, not the batch axis 'n' of ")
