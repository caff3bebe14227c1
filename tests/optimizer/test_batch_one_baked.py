"""A model that declares a dynamic batch but bakes 1 into a Reshape (khmersm's dynamo-exported tagger): said as such.

It was "does not run on the data's rows …; a size the data uses may be fixed in the graph (the TorchScript exporter
bakes …)": not that one row runs, not --unbatched, and TorchScript blamed for a file the graph does not say it made.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.pipeline import OptimizeOptions, optimize
from quantserve.errors import QuantserveError

D = 32


def _reshaped(tmp_path: Path, target: list[int], graph_name: str = "g") -> Path:
    """x [N, 32] → Reshape to the constant `target` → MatMul: a graph whose inputs say any number of rows."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array(target, np.int64), "target"),
        numpy_helper.from_array(rng.normal(size=(target[-1], 3)).astype(np.float32), "W"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "target"], ["r"], name="baked"),
            helper.make_node("MatMul", ["r", "W"], ["y"], name="mm"),
        ],
        graph_name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", None, 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = tmp_path / f"{graph_name}.onnx"
    onnx.save(model, str(path))
    np.savez(tmp_path / "rows.npz", x=rng.normal(size=(40, D)).astype(np.float32))
    return path


def _refusal(tmp_path: Path, path: Path) -> str:
    with pytest.raises(QuantserveError) as caught:
        optimize(OptimizeOptions(path, tmp_path / "rows.npz", "fp32", "embedded", tmp_path / "out"))
    assert caught.value.exit_code == 2 and not (tmp_path / "out").exists()
    return str(caught.value)


def test_a_batch_of_one_baked_into_a_reshape_is_said_with_unbatched_which_builds_it(tmp_path: Path) -> None:
    path = _reshaped(tmp_path, [1, 4, 8])
    assert _refusal(tmp_path, path) == (
        f"{path}: the model runs on one row (x [1, 32]) but not on 8 (Reshape node 'baked': input_shape_size == "
        "requested_shape_size was false. The input tensor cannot be reshaped to the requested shape. Input "
        "shape:{8,32}, requested shape:{1,4,8}): its graph fixes the batch at 1; optimize it with --unbatched (one "
        "row a request)"
    )
    options = OptimizeOptions(path, tmp_path / "rows.npz", "fp32", "embedded", tmp_path / "one", unbatched=True)
    assert optimize(options).path.is_file()  # the advice holds


def test_a_model_failing_on_one_row_too_keeps_its_line_and_names_no_exporter_the_graph_does_not(
    tmp_path: Path,
) -> None:
    path = _reshaped(tmp_path, [-1, 5])  # 32 values a row: no number of rows the data has fills rows of 5
    assert _refusal(tmp_path, path) == (
        f"{path}: the model does not run on the data's rows (x [8, 32]): Reshape node 'baked': size != 0 && "
        "(input_shape_size % size) == 0 was false. The input tensor cannot be reshaped to the requested shape. Input "
        "shape:{8,32}, requested shape:{-1,5}; a size the data uses may be fixed in the graph"
    )


def test_a_graph_the_torchscript_exporter_named_is_said_to_be_its(tmp_path: Path) -> None:
    path = _reshaped(tmp_path, [-1, 5], graph_name="torch-jit-export")  # older TorchScript exports' graph name
    assert _refusal(tmp_path, path).endswith(
        "may be fixed in the graph (the TorchScript exporter bakes an example's sizes into Reshape)"
    )
