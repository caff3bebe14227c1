"""A stop after a run's last window ended: the command's line says its results are complete, not partial.

loadfix34: SIGTERM as Locust shut down after a whole 5 s window saved the run complete (`loadtest.interruption`), and
the command still printed "interrupted; partial results saved in …".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loadtest.interruption import RunInterrupted
from loadtest.load_run import LoadRun
from quantserve.cli.commands.loadtest import INTERRUPTED_EXIT, interrupted_status


def test_a_whole_run_stopped_after_its_window_is_said_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def render(out: Any) -> tuple[None, Path]:
        return None, tmp_path / "report.html"

    monkeypatch.setattr("loadtest.report.render", render)
    stop = RunInterrupted(LoadRun("mlp", []), tmp_path / "load-mlp.json")
    assert interrupted_status(stop, tmp_path) == INTERRUPTED_EXIT
    line = capsys.readouterr().err.strip()
    assert line == (
        "quantserve loadtest: stopped after mlp's last window ended (any model after it not run); complete results "
        f"saved in {tmp_path / 'load-mlp.json'} (report: {tmp_path / 'report.html'}); exit {INTERRUPTED_EXIT}"
    )
    assert "partial" not in line
