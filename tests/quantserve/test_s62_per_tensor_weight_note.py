"""ONNX Runtime's per-channel quantizer logs "Axis 1 is out-of-range for weight 'w' with rank 1" for each 1-D weight
it quantizes per tensor instead (a BatchNormalization's scale and bias no convolution absorbed: tempocnn's Keras
models put BN before each convolution, 8 such lines): the command said only "8 library log messages kept in …";
now one line of its own says what they mean (session 62). The real quantizer runs on a real BN → Conv graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve.cli.library_log import LOG_ENV, PER_TENSOR_NOTE, library_log


def _bn_then_conv(path: Path) -> None:
    rng = np.random.default_rng(62)
    inits = [
        numpy_helper.from_array(rng.uniform(0.5, 2.0, 3).astype(np.float32), "bn_scale"),
        numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "bn_bias"),
        numpy_helper.from_array(np.zeros(3, np.float32), "bn_mean"),
        numpy_helper.from_array(np.ones(3, np.float32), "bn_var"),
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "conv_w"),
    ]
    nodes = [
        helper.make_node("BatchNormalization", ["x", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["h"]),
        helper.make_node("Conv", ["h", "conv_w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bn_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_per_tensor_1d_weight_is_said_in_the_tools_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    monkeypatch.setenv(LOG_ENV, str(tmp_path / "log"))
    source = tmp_path / "bn_conv.onnx"
    _bn_then_conv(source)
    rows = iter([{"x": np.random.default_rng(i).normal(size=(2, 3, 8, 8)).astype(np.float32)} for i in range(4)])

    class Rows(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(rows, None)

    with library_log("optimize") as captured:
        quantize_static(
            str(source),
            str(tmp_path / "q.onnx"),
            Rows(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            op_types_to_quantize=["BatchNormalization", "Conv"],
        )
    logged = (tmp_path / "log" / "quantserve.log").read_text()
    assert "is out-of-range for weight" in logged, logged  # the library's own line, in the file
    assert f"note: {PER_TENSOR_NOTE}" in captured.lines(), captured.lines()
