"""ORT transformer fusions on the exported encoder: node counts by op type, outputs equal to the unfused model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from examples import text_encoder
from optimizer.export import manifest_from_onnx
from optimizer.transformer import FuseTransformer, TransformerSettings, run_model
from quantserve.artifact import Artifact
from quantserve.errors import QuantserveError


def _artifact(path: Path) -> Artifact:
    return Artifact(path, manifest_from_onnx(onnx.load(str(path)), "text_encoder"))


@pytest.fixture(scope="module")
def fused(trained_encoder, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    out = tmp_path_factory.mktemp("fused") / "fused.onnx"
    checks = text_encoder.trim_padding(trained_encoder.calib.take(0, 8)).arrays
    return FuseTransformer(num_heads=4, hidden_size=64, check_inputs=checks)(_artifact(trained_encoder.onnx_path), out)


def test_attention_layernorm_gelu_and_embedding_are_fused(fused: Artifact) -> None:
    record = fused.manifest.stages[-1]
    layers = text_encoder.EncoderConfig().num_layers
    assert record["fused"] == {
        "Attention": layers,
        "EmbedLayerNormalization": 1,
        "SkipLayerNormalization": 2 * layers,
        "LayerNormalization": 0,
        "BiasGelu": layers,
    }
    assert record["nodes_after"] < record["nodes_before"] / 3
    assert "Softmax" not in record["op_types_after"] and "Softmax" in record["op_types_before"]
    assert record["max_abs_diff"] < 1e-4


def test_fused_outputs_match_unfused_over_mixed_lengths(fused: Artifact, trained_encoder) -> None:
    feeds = trained_encoder.held_out.arrays  # lengths 8..32, right-padded
    want, got = run_model(trained_encoder.onnx_path, feeds), run_model(fused.path, feeds)
    for name in text_encoder.OUTPUT_NAMES:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-4)


def test_heads_and_hidden_size_are_detected_when_not_given(trained_encoder, tmp_path: Path) -> None:
    detected = FuseTransformer()(_artifact(trained_encoder.onnx_path), tmp_path / "fused.onnx")
    assert detected.manifest.stages[-1]["fused"]["Attention"] == text_encoder.EncoderConfig().num_layers


def test_slimmed_graph_loses_the_attention_pattern(trained_encoder, tmp_path: Path) -> None:
    """Why the transformer fuse stage replaces onnxslim: after slimming, attention no longer fuses."""
    import onnxslim

    slim = tmp_path / "slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(str(trained_encoder.onnx_path))), str(slim))
    fused = FuseTransformer(4, 64)(_artifact(slim), tmp_path / "fused.onnx")
    assert fused.manifest.stages[-1]["fused"]["Attention"] == 0


def test_bad_transformer_settings_are_one_line_errors() -> None:
    with pytest.raises(QuantserveError, match="multiple of num heads"):
        TransformerSettings(num_heads=5, hidden_size=64)
    with pytest.raises(QuantserveError, match="unknown model type"):
        TransformerSettings(model_type="gpt2")


def test_a_failing_transformer_fusion_falls_back_to_onnxslim(
    trained_encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORT's fusion scripts raise plain exceptions on graphs they cannot read: the build goes on with onnxslim's
    fusions, said in a note (before, the model was refused at fuse)."""
    import onnxruntime.transformers.optimizer as ort_optimizer

    def fails(*args: object, **kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(ort_optimizer, "optimize_model", fails)
    fused = FuseTransformer(4, 64)(_artifact(trained_encoder.onnx_path), tmp_path / "fused.onnx")
    record = fused.manifest.stages[-1]
    assert record["tool"] == "onnxslim" and "unfused" in record and record["nodes_after"] < record["nodes_before"]
    assert record["unfused"]["note"] == (
        "ONNX Runtime's transformer fusion skipped: the fusion scripts failed on the graph (IndexError: list index "
        "out of range); onnxslim's fusions only"
    )
    feeds = trained_encoder.held_out.arrays
    want, got = run_model(trained_encoder.onnx_path, feeds), run_model(fused.path, feeds)
    for name in text_encoder.OUTPUT_NAMES:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-4)
