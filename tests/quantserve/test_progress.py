"""Progress bars on long work: stage and step bars with elapsed and remaining time; silent when nobody watches."""

from __future__ import annotations

import argparse
import io
import os
import pty
import subprocess
import sys
from pathlib import Path

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


def test_work_inside_a_stage_gets_its_own_bar_until_the_next_stage() -> None:
    console, out = _terminal()
    with StageProgress("optimize", ["fuse", "calibrate", "build"], quiet=False, console=console) as bar:
        bar("calibrate")
        for done in (1, 2, 3):
            bar.on_progress(done, 8, "calibration: min/max ranges")
        bar.progress.refresh()
        detail = bar.progress.tasks[1]
        assert (detail.completed, detail.total, detail.description) == (3, 8, "  calibration: min/max ranges")
        bar("calibrate: probe 1")  # a step inside the stage keeps the inner bar
        bar.on_progress(1, 4, "mixed precision: probing groups")  # new work: the inner bar starts again
        assert (detail.completed, detail.total, detail.description) == (1, 4, "  mixed precision: probing groups")
        bar.progress.refresh()
        bar("build")
        assert len(bar.progress.tasks) == 1
    drawn = out.getvalue()
    assert "calibration: min/max ranges" in drawn and "3/8" in drawn and "1/4" in drawn


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
        bar.on_progress(1, 2, "calibration: min/max ranges")
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


ROOT = Path(__file__).resolve().parents[2]


def _in_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `python -m quantserve ARGV` with stdout and stderr on a pseudo-terminal; exit code and all it drew."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm", "QUANTSERVE_CACHE_DIR": str(cwd / "cache")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    child = subprocess.Popen(
        [sys.executable, "-m", "quantserve", *argv], stdout=follower, stderr=follower, cwd=cwd, env=env
    )
    os.close(follower)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return child.wait(timeout=300), drawn.decode(errors="replace")


def test_optimize_in_a_terminal_shows_the_calibration_bar(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "assets"))
    try:
        import make_tiny_models
    finally:
        sys.path.remove(str(ROOT / "tests" / "assets"))
    model = make_tiny_models.write_tiny_onnx(tmp_path / "tiny.onnx")
    calib = make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=400)
    argv = ["optimize", str(model), "--calib", str(calib), "--out", str(tmp_path / "out"), "--skip-timing"]
    code, drawn = _in_a_terminal(argv, tmp_path)
    assert code == 0, drawn
    # the inner bar stays up while the static candidate is measured (a child-process profile: about a second)
    assert "calibration: min/max ranges" in drawn and "optimize: calibrate" in drawn, drawn
    quiet_code, quiet = _in_a_terminal(["--quiet", *argv], tmp_path)
    assert quiet_code == 0 and "calibration:" not in quiet and "optimize:" not in quiet, quiet


def test_a_heartbeat_says_what_runs_where_no_bar_is_drawn() -> None:
    import time

    from quantserve.cli.progress import Heartbeat

    log = io.StringIO()
    heartbeat = Heartbeat("optimize", interval_s=0.05, stream=log)
    with StageProgress("optimize", ["fuse", "calibrate"], quiet=True, heartbeat=heartbeat) as progress:
        progress("calibrate")
        progress.on_progress(3, 8, "calibration chunks")
        time.sleep(0.3)
    lines = log.getvalue().splitlines()
    assert lines and lines[-1].startswith("quantserve: optimize: still running (")
    assert lines[-1].endswith("): calibrate: calibration chunks 3 of 8")
    count = len(lines)
    time.sleep(0.15)
    assert len(log.getvalue().splitlines()) == count, "the heartbeat stops with the work"


def test_a_short_run_has_no_heartbeat_line() -> None:
    from quantserve.cli.progress import Heartbeat

    log = io.StringIO()
    with StageProgress("optimize", ["fuse"], quiet=True, heartbeat=Heartbeat("optimize", stream=log)) as progress:
        progress("fuse")
    assert log.getvalue() == ""


def test_heartbeat_only_without_quiet_or_json_on_a_non_terminal() -> None:
    from quantserve.cli.progress import wants_heartbeat

    assert wants_heartbeat(argparse.Namespace(quiet=False, json=False))  # pytest's stderr is not a terminal
    assert not wants_heartbeat(argparse.Namespace(quiet=True, json=False))
    assert not wants_heartbeat(argparse.Namespace(quiet=False, json=True))
