"""`quantserve bench --model` on a model that takes no batch (optimize would build it only with --unbatched): one
line saying the bench cannot measure it and what measures it instead. Before, it stopped with optimize's advice
"build it with --unbatched", a flag the bench has not (its rows 4 and 5 compare Triton's dynamic batching).

The model is a detector's tail: x [1, 20, 6] squeezed to its 20 boxes, the rows scoring over 0.5 kept ([K, 6]),
so two rows sent together do not run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.errors import QuantserveError


def write_selecting_model(folder: Path) -> tuple[Path, Path]:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Squeeze", ["x", "ax0"], ["x0"]),
        helper.make_node("Gather", ["x0", "c4"], ["score"], axis=1),
        helper.make_node("Greater", ["score", "threshold"], ["kept"]),
        helper.make_node("NonZero", ["kept"], ["where"]),
        helper.make_node("Squeeze", ["where", "ax0"], ["rows"]),
        helper.make_node("Gather", ["x0", "rows"], ["det"], axis=0),
    ]
    consts = {"ax0": np.array([0], np.int64), "c4": np.array(4, np.int64), "threshold": np.array(0.5, np.float32)}
    graph = helper.make_graph(
        nodes,
        "select",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 20, 6])],
        [helper.make_tensor_value_info("det", TensorProto.FLOAT, ["K", 6])],
        [numpy_helper.from_array(value, name) for name, value in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(folder / "select.onnx"))
    np.savez(folder / "select.npz", x=np.random.default_rng(0).random((64, 20, 6)).astype(np.float32))
    return folder / "select.onnx", folder / "select.npz"


def test_bench_refuses_a_model_that_takes_no_batch_naming_what_measures_it(tmp_path: Path) -> None:
    from quantserve.cli.bench_user import UserModelSpec, prepare_user

    model, data = write_selecting_model(tmp_path)
    said: list[str] = []
    with pytest.raises(QuantserveError) as refused:
        prepare_user(UserModelSpec(str(model), data), tmp_path / "build", said.append)
    line = str(refused.value)
    assert line.startswith("select: bench cannot measure a model that takes no batch (its rows 4 and 5 compare ")
    assert "input 'x' has a fixed batch axis (1)" in line  # optimize's reason, kept
    assert line.endswith(
        "to measure it one request at a time, build it with 'quantserve optimize --unbatched', then "
        "'quantserve deploy' and 'quantserve loadtest' it"
    )
    assert "\n" not in line and "build it with --unbatched" not in line
