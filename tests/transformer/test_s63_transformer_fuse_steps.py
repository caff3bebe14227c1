"""The transformer fuse stage says what it is doing, as the generic one does (session 62's fuse heartbeat): optimize's
progress line read "fuse: checking axis 0 on the data" through ONNX Runtime's fusions, the check and the comparison."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from examples import text_encoder
from optimizer.export import manifest_from_onnx
from optimizer.fuse import FusionChanged
from optimizer.transformer import FuseTransformer, TransformerSettings
from quantserve.artifact import Artifact


def _artifact(path: Path) -> Artifact:
    return Artifact(path, manifest_from_onnx(onnx.load(str(path)), "text_encoder"))


def test_the_transformer_fuse_stage_names_each_step_as_it_starts(trained_encoder, tmp_path: Path) -> None:
    checks = text_encoder.trim_padding(trained_encoder.calib.take(0, 8)).arrays
    steps: list[str] = []
    stage = TransformerSettings(num_heads=4, hidden_size=64).fuse_stage(checks, on_step=steps.append)
    assert isinstance(stage, FuseTransformer)
    stage(_artifact(trained_encoder.onnx_path), tmp_path / "fused.onnx")
    assert steps == [
        "fuse: ONNX Runtime's bert fusions",
        "fuse: checking the fused graph",
        "fuse: proving outputs unchanged on 8 rows",
    ]


def test_a_failed_fusion_says_so_and_the_generic_steps_follow(
    trained_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where ONNX Runtime's fusion scripts fail on the graph, onnxslim's fusions run instead, and the progress line
    says so before their own steps."""

    def fail(self: FuseTransformer, path: Path) -> onnx.ModelProto:
        raise FusionChanged("the fusion scripts failed on the graph (ValueError: test)")

    monkeypatch.setattr(FuseTransformer, "_optimize", fail)
    checks = text_encoder.trim_padding(trained_encoder.calib.take(0, 8)).arrays
    steps: list[str] = []
    FuseTransformer(check_inputs=checks, on_step=steps.append)(
        _artifact(trained_encoder.onnx_path), tmp_path / "f.onnx"
    )
    assert steps[:3] == [
        "fuse: ONNX Runtime's bert fusions",
        "fuse: the transformer fusions failed: onnxslim's instead",
        "fuse: onnxslim",
    ]
    assert steps[-1] == "fuse: proving outputs unchanged on 8 rows"
