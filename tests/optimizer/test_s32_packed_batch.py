"""A packed batch (a graph network's nodes, edges and graphs on axis 0 of different inputs) is refused as the
model's, from its declared dims, before the data is read: minimol's calibration file had been blamed ("arrays
disagree on the number of samples"), with and without --unbatched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer.sample_axis import packed_batch_refusal
from quantserve.cli import main


def _model(path: Path, inputs: dict[str, list[int | str]]) -> Path:
    """One Identity per input and a MatMul (something to quantize): only the declared dims matter here."""
    graph = helper.make_graph(
        [helper.make_node("Identity", [name], [f"{name}_out"]) for name in inputs]
        + [helper.make_node("MatMul", ["weight", "weight"], ["square"])],
        "declared",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, dims) for name, dims in inputs.items()],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, dims) for name, dims in inputs.items()]
        + [helper.make_tensor_value_info("square", TensorProto.FLOAT, [2, 2])],
        [numpy_helper.from_array(np.eye(2, dtype=np.float32), "weight")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


PACKED = {
    "feat": ["num_nodes", 4],
    "edge_feat": ["num_edges", 3],
    "edge_index": [2, "num_edges"],
    "membership": ["num_nodes"],
    "graph_slots": ["num_graphs"],
}
WHY = (
    "the model's inputs share no sample axis: axis 0 is 'num_nodes' for 'feat', 'membership'; 'num_edges' for "
    "'edge_feat'; 2 for 'edge_index'; 'num_graphs' for 'graph_slots' ('num_edges' is also axis 1 of 'edge_index', "
    "so it counts items, not samples); quantserve needs one axis 0 along which every input holds the same samples; "
    "a packed batch (a graph network's nodes, edges and graphs) is not supported"
)


@pytest.mark.parametrize("unbatched", [False, True])
def test_a_packed_graph_batch_is_refused_for_the_model_not_its_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], unbatched: bool
) -> None:
    model = _model(tmp_path / "graph.onnx", PACKED)
    calib = tmp_path / "calib.npz"
    np.savez(
        calib,
        feat=np.zeros((7, 4), np.float32),
        edge_feat=np.zeros((12, 3), np.float32),
        edge_index=np.zeros((2, 12), np.float32),
        membership=np.zeros(7, np.float32),
        graph_slots=np.zeros(2, np.float32),
    )
    argv = ["optimize", str(model), "--calib", str(calib), "--out", str(tmp_path / "out"), "--skip-timing"]
    assert main([*argv, "--unbatched"] if unbatched else argv) == 2
    mode = "--unbatched sends each row of axis 0 of every input as one request, but " if unbatched else ""
    assert capsys.readouterr().err.strip() == f"quantserve: error: {model}: {mode}{WHY}"
    assert not (tmp_path / "out").exists()


def test_batch_axes_named_apart_by_the_exporter_are_no_packed_batch(tmp_path: Path) -> None:
    # torch.onnx's dynamic_axes as lists name each input's batch axis apart; nothing says they differ
    named_apart = {
        "input_ids": ["input_ids_dynamic_axes_1", 16],
        "attention_mask": ["attention_mask_dynamic_axes_1", 16],
    }
    assert packed_batch_refusal(_model(tmp_path / "bert.onnx", named_apart)) is None
    state = {"frames": ["rows", 8], "h": [2, "rows", 8]}  # a state beside the rows: refused by the export stage
    assert packed_batch_refusal(_model(tmp_path / "vad.onnx", state)) is None
