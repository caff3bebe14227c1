"""What the search holds while it looks for activation outliers after a drift refusal (session 43: YOLOv8n DocLayNet at
1024² peaked at 9 GB in a 600 s search that refused, 4 GB in one that ran out of time first; the outlier measurement
alone took 7 GB): a strided sample per tensor and batch, not every batch's whole activation."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optimizer import activation_outliers as outliers_module
from optimizer.activation_outliers import SAMPLE_VALUES, STATS_BATCH, activation_outliers
from quantserve.data import TensorData

BATCHES = 12
VALUES = 1 << 20  # per batch: 4 MB of float32, sixteen times the sample kept of it


def _matmul() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
    )
    return helper.make_model(graph)


def test_only_a_sample_of_each_batch_is_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve batches of 4 MB each: before, the samples were strided views that kept all twelve alive (48 MB);
    now each batch's activation goes once the next comes."""

    def tensors(_path: Path, batches: Iterable[dict[str, np.ndarray]], names: Sequence[str]) -> Iterator[dict]:
        for index, _ in enumerate(batches):
            yield {"x": np.random.default_rng(index).standard_normal(VALUES, dtype=np.float32)}

    monkeypatch.setattr(outliers_module, "run_with_tensors", tensors)
    tracemalloc.start()
    try:
        found = activation_outliers(_matmul(), Path("unused.onnx"), [{"x": np.zeros((1, 4))}] * BATCHES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found is not None and found.tensor == "x" and found.rows == VALUES * BATCHES
    one_batch = VALUES * 4
    # a batch, its |x|, the samples (BATCHES × SAMPLE_VALUES) and the percentile's copies: far below twelve batches
    assert peak < 4 * one_batch + 4 * BATCHES * SAMPLE_VALUES * 4, peak / one_batch


def _convs(path: Path) -> onnx.ModelProto:
    """Conv → Relu → Conv on one 257² channel: the second Conv reads 4 × 255² values a row, whose stride over a batch
    of 8 (31) does not divide a row, so each part of a batch starts the sample at another offset."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(4, 1, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(2, 4, 1, 1)).astype(np.float32), "w2"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1"),
            helper.make_node("Relu", ["c"], ["r"], name="act"),
            helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 257, 257])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 255, 255])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return model


def test_a_batch_run_a_few_rows_at_a_time_gives_the_same_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of a large input run three at a time: no run holds more, and every tensor's peak and sampled values are
    those of the whole batch of 8 (the same ratio, the same advice)."""
    model = _convs(tmp_path / "convs.onnx")
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(13, 1, 257, 257)).astype(np.float32)
    rows[5, 0, 7, 9] = 300.0
    data = TensorData({"x": rows})
    fed: list[int] = []
    seen: list[tuple[float, np.ndarray]] = []
    run_with_tensors, ratio = outliers_module.run_with_tensors, outliers_module._ratio

    def counted(path: Path, batches: Iterable[dict[str, np.ndarray]], names: Sequence[str]) -> Iterator[dict]:
        for values in run_with_tensors(path, batches, names):
            fed.append(len(values["x"]))
            yield values

    def kept(peak: float, values: np.ndarray) -> float:
        seen.append((peak, values))
        return ratio(peak, values)

    monkeypatch.setattr(outliers_module, "run_with_tensors", counted)
    monkeypatch.setattr(outliers_module, "_ratio", kept)
    whole = activation_outliers(model, tmp_path / "convs.onnx", data.batches(STATS_BATCH))
    whole_fed, whole_seen = list(fed), list(seen)
    fed.clear(), seen.clear()
    parts = activation_outliers(model, tmp_path / "convs.onnx", data.batches(STATS_BATCH), rows_at_once=3)
    assert whole_fed == [8, 5] and fed == [3, 3, 2, 3, 2]
    assert whole is not None and parts == whole and whole.tensor == "x"
    assert len(seen) == len(whole_seen) == 2  # x and the Relu's output
    for (peak, values), (whole_peak, whole_values) in zip(seen, whole_seen, strict=True):
        assert peak == whole_peak and np.array_equal(values, whole_values)
