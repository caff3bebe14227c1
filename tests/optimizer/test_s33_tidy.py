"""The user's `.onnx` file is read once, without its weights, for the refusals its graph alone shows (nothing to
quantize, a packed batch): `onnx_files.user_graph`, shared by `quant_exclusions` and `sample_axis`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer import onnx_files
from optimizer.pipeline import OptimizeOptions, optimize
from quantserve.errors import QuantserveError


def _matmul(path: Path) -> Path:
    """x @ w, w of 64 KiB saved in `<file>.data` beside the model (external data)."""
    weight = numpy_helper.from_array(np.ones((128, 128), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 128])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_files.save_external(model, path, onnx_files.data_path(path).name)
    return path


def test_user_graph_reads_the_graph_without_its_weights(tmp_path: Path) -> None:
    path = _matmul(tmp_path / "model.onnx")
    onnx_files.data_path(path).unlink()  # the weights are not read: the graph alone is
    graph = onnx_files.user_graph(str(path))
    assert graph is not None and [n.op_type for n in graph.graph.node] == ["MatMul"]
    assert graph.graph.initializer[0].data_location == TensorProto.EXTERNAL


def test_user_graph_is_none_where_the_export_stage_says_why(tmp_path: Path) -> None:
    (tmp_path / "damaged.onnx").write_bytes(b"\x08\x07not a model")
    (tmp_path / "folder.onnx").mkdir()
    assert onnx_files.user_graph(tmp_path / "damaged.onnx") is None
    assert onnx_files.user_graph(tmp_path / "missing.onnx") is None
    assert onnx_files.user_graph(tmp_path / "folder.onnx") is None
    assert onnx_files.user_graph(_matmul(tmp_path / "model.pt2")) is None  # no `.onnx`: judged after export
    assert onnx_files.user_graph("examples.digits:build") is None


def test_optimize_reads_the_users_graph_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _matmul(tmp_path / "model.onnx")
    loads: list[str] = []
    load = onnx.load

    def counted(source: str, *args: object, **kwargs: object) -> onnx.ModelProto:
        loads.append(str(source))
        return load(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(onnx, "load", counted)
    options = OptimizeOptions(path, tmp_path / "missing.npz", "int8", "onnxruntime", tmp_path / "out")
    with pytest.raises(QuantserveError, match=r"missing\.npz"):  # stops at the data, after the graph's refusals
        optimize(options)
    assert loads == [str(path)]
