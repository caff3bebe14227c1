"""The fuse stage says what it is doing: on a 44 M-parameter ISNet at 1024², `optimize`'s progress line read
"still running (12m…): fuse" with no sub-step, where calibrate says "min/max ranges 5 of 8"."""

from __future__ import annotations

import io
from pathlib import Path

from optimizer.export import export_onnx
from optimizer.fuse import FuseGraph
from optimizer.pipeline import OptimizeOptions, optimize
from optimizer.source import load_source
from optimizer.speed import SpeedSettings
from quantserve.cli.progress import Heartbeat, StageProgress

FUSE_STEPS = ["fuse: onnxslim", "fuse: checking the fused graph", "fuse: proving outputs unchanged on 4 rows"]


def test_the_fuse_stage_names_each_step_as_it_starts(tiny_onnx: Path, tmp_path: Path) -> None:
    exported = export_onnx(load_source(tiny_onnx), tmp_path / "exported.onnx")
    steps: list[str] = []
    FuseGraph(on_step=steps.append)(exported, tmp_path / "fused.onnx")
    assert steps == FUSE_STEPS


def test_optimize_passes_the_fuse_steps_to_its_stage_callback(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    stages: list[str] = []
    options = OptimizeOptions(
        tiny_onnx,
        calib_npz,
        "fp32",
        "embedded",
        tmp_path / "out",
        on_stage=stages.append,
        speed=SpeedSettings(enabled=False),
    )
    optimize(options)
    fuse = stages.index("fuse")
    assert stages[fuse + 1 : fuse + 5] == [
        "fuse: checking axis 0 on the data",
        "fuse: onnxslim",
        "fuse: checking the fused graph",
        "fuse: proving outputs unchanged on 8 rows",
    ]


def test_a_fuse_step_is_the_heartbeat_text_and_keeps_the_bar_at_fuse() -> None:
    heartbeat = Heartbeat("optimize", interval_s=3600, stream=io.StringIO())
    with StageProgress("optimize", ["export", "fuse", "build"], quiet=True, heartbeat=heartbeat) as progress:
        progress("export")
        progress("fuse")
        progress("fuse: onnxslim")
        assert heartbeat.line().endswith(": fuse: onnxslim")
        assert progress.progress.tasks[0].completed == 1
