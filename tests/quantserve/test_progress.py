"""Progress bars on long work: stage and step bars with elapsed and remaining time; silent when nobody watches."""

from __future__ import annotations

import argparse
import io
import sys

import pytest
from rich.console import Console

from quantserve.cli.commands.optimize import planned_stages
from quantserve.cli.progress import StageProgress, StepProgress, is_quiet


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=120), out


def test_stage_bar_names_the_stage_with_elapsed_and_remaining_time() -> None:
    console, out = _terminal()
    with StageProgress("optimize", ["export", "fuse", "calibrate", "build"], quiet=False, console=console) as bar:
        bar("export")
        bar("calibrate")
        bar.progress.refresh()
        task = bar.progress.tasks[0]
        assert (task.completed, task.total, task.description) == (2, 4, "optimize: calibrate")
    drawn = out.getvalue()
    assert "optimize: calibrate" in drawn and "2/4" in drawn and "elapsed" in drawn and "left" in drawn


def test_step_bar_counts_load_steps() -> None:
    console, out = _terminal()
    with StepProgress("load digits_int8", 3, quiet=False, console=console) as bar:
        for users in (1, 4, 16):
            bar.describe(f"u{users}, 12 s")
            bar.advance()
        bar.progress.refresh()
    assert "load digits_int8: u16, 12 s" in out.getvalue() and "3/3" in out.getvalue()


def test_quiet_draws_nothing() -> None:
    console, out = _terminal()
    with StageProgress("optimize", ["export"], quiet=True, console=console) as bar:
        bar("export")
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("flags", "tty", "quiet"),
    [({}, True, False), ({"quiet": True}, True, True), ({"json": True}, True, True), ({}, False, True)],
)
def test_quiet_under_quiet_json_or_without_a_terminal(
    flags: dict[str, bool], tty: bool, quiet: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    assert is_quiet(argparse.Namespace(**flags)) is quiet


def test_optimize_plans_the_stages_the_pipeline_reports() -> None:
    from optimizer.pipeline import OptimizeOptions
    from optimizer.speed import SpeedSettings

    int8 = OptimizeOptions("m.onnx", "c.npz", "int8", "embedded", "out")
    assert planned_stages(int8) == ["export", "fuse", "calibrate", "build", "verify", "time"]
    untimed = OptimizeOptions("m.onnx", "c.npz", "int8", "embedded", "out", speed=SpeedSettings(enabled=False))
    assert planned_stages(untimed)[-1] == "verify"
    assert planned_stages(OptimizeOptions("m.onnx", "c.npz", "fp32", "embedded", "out")) == [
        "export",
        "fuse",
        "build",
        "verify",
    ]
