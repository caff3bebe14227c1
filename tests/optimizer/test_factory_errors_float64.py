"""A float64 model ONNX Runtime cannot load says why: its CPU kernels lack double for the op.

ORT's own line, "Could not find an implementation for Conv(11) node with name '…'", never names the type; a probe's
float64 export of a digits CNN ended there, int8 and fp32 alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.batch_axis import checking_session
from quantserve.errors import QuantserveError


def _conv(path: Path, elem_type: int, dtype: type) -> Path:
    weight = numpy_helper.from_array(np.ones((2, 1, 3, 3), dtype=dtype), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv0")],
        "conv",
        [helper.make_tensor_value_info("x", elem_type, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", elem_type, None)],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_float64_conv_says_to_export_in_float32(tmp_path: Path) -> None:
    path = _conv(tmp_path / "f64.onnx", TensorProto.DOUBLE, np.float64)
    with pytest.raises(QuantserveError) as caught:
        checking_session(path, path)
    assert str(caught.value) == (
        f"{path}: ONNX Runtime cannot load it (Could not find an implementation for Conv(11) node with name 'conv0'); "
        "ONNX Runtime's CPU kernels lack float64 (tensor(double)) for Conv: export the model in float32 "
        "(e.g. model.float() and float32 example inputs before torch.onnx.export) and give it float32 data"
    )


def test_a_float32_conv_loads(tmp_path: Path) -> None:
    path = _conv(tmp_path / "f32.onnx", TensorProto.FLOAT, np.float32)
    assert checking_session(path, path).get_inputs()[0].name == "x"
