"""The share of multiply-adds INT8 runs is read from an --unbatched build's whole sample: its first frame alone
failed a beat tracker's Conv (ORT's error leaked to stderr, the share was lost, and a build 2 % INT8 was told to time
again on an idle machine, session 40)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.compute_share import int8_compute_share


def _frames_conv(path: Path) -> None:
    """(T, 4) frames → a Conv over time with a kernel of 3 and no padding: one frame is too few to run."""
    weight = numpy_helper.from_array(np.ones((2, 1, 3, 1), np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, 1, -1, 4], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["image"]), helper.make_node("Conv", ["image", "w"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["frames", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(
        helper.make_graph(nodes, "frames", [x], [y], [weight, shape]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    onnx.save(model, path)


def test_a_whole_sample_is_read_where_its_first_frame_cannot_run(tmp_path: Path) -> None:
    path = tmp_path / "fp32.onnx"
    _frames_conv(path)
    sample = {"x": np.ones((20, 4), np.float32)}
    assert int8_compute_share(path, path, sample, whole=True) == (0.0, {"Conv": 1})
    with pytest.raises(Exception):  # noqa: B017 - ORT's own type: one frame is too few for the kernel
        int8_compute_share(path, path, sample)
