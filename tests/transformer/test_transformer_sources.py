"""The transformer pipeline from a `torch.export` program (.pt2): dynamo export, fusions, INT8 within budget."""

from __future__ import annotations

from pathlib import Path

from examples import text_encoder
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.speed import SpeedSettings
from optimizer.transformer import TransformerSettings


def test_pt2_program_goes_through_the_transformer_pipeline(trained_encoder, tmp_path: Path) -> None:
    program = text_encoder.export_program(trained_encoder.model, tmp_path / "encoder.pt2")
    options = OptimizeOptions(
        program,
        trained_encoder.calib_path,
        "int8",
        "embedded",
        tmp_path / "build",
        eval_path=trained_encoder.eval_path,
        transformer=TransformerSettings("bert", 4, 64),
        speed=SpeedSettings(enabled=False),  # speed is a benchmark's job, not a test's
    )
    built = optimize(options)
    manifest = built.manifest
    assert [t.name for t in manifest.inputs] == list(text_encoder.INPUT_NAMES)
    assert all(t.shape[0] == "batch" and isinstance(t.shape[1], str) for t in manifest.inputs)
    stages = {s["stage"]: s for s in manifest.stages}
    assert stages["export"]["exporter"] == "dynamo"
    # The dynamo graph's attention does not match ORT's BERT pattern; LayerNorm and GELU still fuse.
    assert stages["fuse"]["fused"]["LayerNormalization"] + stages["fuse"]["fused"]["SkipLayerNormalization"] > 0
    assert stages["calibrate"]["within_budget"]
    assert manifest.verification is not None and manifest.verification["top1_agreement"] >= 0.99
