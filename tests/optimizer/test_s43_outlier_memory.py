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
from onnx import TensorProto, helper

from optimizer import activation_outliers as outliers_module
from optimizer.activation_outliers import SAMPLE_VALUES, activation_outliers

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
