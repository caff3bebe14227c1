"""The timing child's memory is counted per row from what rows beyond the first add (optimizer.timing_rows; session 51).

Counted from one row's run alone, a run's workspace was counted once a row: CREPE's "batch 8 would need ~3.3 GB"
(176 MB a row) held 0.40 GB at batch 8, FP32 and INT8 together, and its speed was timed at batch 4, not 8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import optimizer.timing_rows as timing_rows
from optimizer.timing_rows import Footprint, fit_timing_rows, measure_footprint, paired_bytes
from quantserve.data import TensorData

SIDE = 3000  # a run's workspace: one value of the input spread over SIDE² floats (36 MB), whatever the batch


def _workspace_model(path: Path) -> Path:
    """y = x + sum(expand(x[0, 0], [SIDE, SIDE])) · 0: a fixed 36 MB intermediate per run, a few bytes a row."""
    inits = [
        numpy_helper.from_array(np.array([0, 0], np.int64), "starts"),
        numpy_helper.from_array(np.array([1, 1], np.int64), "ends"),
        numpy_helper.from_array(np.array([SIDE, SIDE], np.int64), "side"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
    ]
    nodes = [
        helper.make_node("Slice", ["x", "starts", "ends"], ["corner"]),
        helper.make_node("Expand", ["corner", "side"], ["plane"]),
        helper.make_node("ReduceSum", ["plane"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["x", "nothing"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "workspace",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_run_s_workspace_is_counted_once_not_once_a_row(tmp_path: Path) -> None:
    model = _workspace_model(tmp_path / "w.onnx")
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    one_row = measure_footprint(model, {"x": x[:1]}, threads=1)
    assert one_row.row_bytes > 30 * 10**6, one_row  # the workspace read as a row's cost
    counted = measure_footprint(model, {"x": x[:1]}, 1, {"x": x[:4]}, 4)
    assert counted.fixed_bytes > 20 * 10**6 and counted.row_bytes <= one_row.row_bytes // 3, counted
    # what 8 rows add to the sessions: a run's workspace once and a little a row, not the workspace 8 times
    assert paired_bytes(counted, 8) - paired_bytes(Footprint(counted.session_bytes, 0), 0) < 8 * one_row.row_bytes


def test_the_batch_is_chosen_from_rows_beyond_the_first(tmp_path: Path, monkeypatch) -> None:
    seen: list[int] = []

    def measured(fp32: Path, row: dict, threads: int, more: dict | None = None, rows: int = 1) -> Footprint:
        seen.append(rows)
        return Footprint(session_bytes=100 << 20, row_bytes=10 << 20, fixed_bytes=300 << 20)

    monkeypatch.setattr(timing_rows, "measure_footprint", measured)
    data = TensorData({"x": np.zeros((16, 4), np.float32)})
    chosen = fit_timing_rows(tmp_path / "m.onnx", data, 8, threads=1)
    assert seen == [timing_rows.FOOTPRINT_ROWS] and chosen.rows == 8
    assert chosen.need_bytes == 2 * ((100 << 20) + (300 << 20) + 8 * (10 << 20))
