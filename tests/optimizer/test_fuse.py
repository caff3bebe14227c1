from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph, random_feeds
from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from optimizer.source import load_source


def test_batchnorm_is_folded_and_outputs_match(tiny_onnx: Path, tmp_path: Path) -> None:
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    fused = FuseGraph()(exported, tmp_path / "fused.onnx")
    record = fused.manifest.stages[-1]
    assert record["op_types_before"]["BatchNormalization"] == 1
    assert "BatchNormalization" not in record["op_types_after"]
    assert record["nodes_after"] < record["nodes_before"]
    assert record["nodes_after"] == len(onnx.load(str(fused.path)).graph.node)
    feeds = {"pixels": np.random.default_rng(3).uniform(0, 16, (6, 1, 8, 8)).astype(np.float32)}
    with OnnxRuntimeRunner(exported.path, "disable") as before, OnnxRuntimeRunner(fused.path, "disable") as after:
        np.testing.assert_allclose(after.infer(feeds)["logits"], before.infer(feeds)["logits"], rtol=1e-4, atol=1e-4)


def test_random_feeds_follow_the_specs(tmp_path: Path) -> None:
    exported = export_onnx(load_source("make_tiny_models:tiny_sequence_model"), tmp_path / "seq.onnx")
    feeds = random_feeds(exported.manifest.inputs)
    assert feeds["input_ids"].dtype == np.int64
    assert feeds["input_ids"].shape == (4, 8)
