"""The heartbeat says a factory is building the model (session 62): `optimize examples.text_encoder:build` trained
for minutes inside the export stage while its log said only `still running (19m30s): export`."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import pytest

from quantserve import cli

# A factory that returns only once the heartbeat has named the export stage while it runs (no sleep decides the test).
SLOW_FACTORY = """
import os
import time
from pathlib import Path

import make_tiny_models


def build():
    log = Path(os.environ["S62_HEARTBEAT_LOG"])
    deadline = time.monotonic() + 60
    while "): export" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.01)
    return make_tiny_models.tiny_cnn_factory()
"""


def test_the_heartbeat_names_the_factory_building_the_model(
    tmp_path: Path, calib_npz: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantserve.cli import progress

    log_path = tmp_path / "heartbeat.log"
    (tmp_path / "s62_slow_factory.py").write_text(SLOW_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("S62_HEARTBEAT_LOG", str(log_path))
    log: TextIO = log_path.open("w")

    class FastHeartbeat(progress.Heartbeat):
        def __init__(self, title: str) -> None:
            super().__init__(title, interval_s=0.02, stream=log)

    monkeypatch.setattr(progress, "Heartbeat", FastHeartbeat)
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    argv = ["optimize", "s62_slow_factory:build", "--eval", str(calib_npz), "--precision", "fp32"]
    try:
        assert cli.main([*argv, "--out", str(tmp_path / "b")]) == 0
    finally:
        log.close()
    beats = [line for line in log_path.read_text().splitlines() if "): export" in line]
    assert beats and beats[0].startswith("quantserve: optimize: still running (")
    assert beats[0].endswith("): export (s62_slow_factory:build building the model)"), beats[0]


def test_a_model_file_keeps_the_bare_stage_name() -> None:
    from quantserve.cli.commands.optimize import stage_words

    assert stage_words("model.onnx") == {}
    assert stage_words("pkg.mod:build") == {"export": "export (pkg.mod:build building the model)"}
