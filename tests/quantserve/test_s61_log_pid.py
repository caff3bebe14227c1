"""Each line of the shared library log names its process (session 61): several users' optimize runs appending to
~/.cache/quantserve/log/quantserve.log at once interleaved their lines, so the "kept in" line said where to look but
not which lines were the run's own."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from quantserve.cli.library_log import LOG_ENV, library_log


def test_every_line_and_the_closing_note_name_the_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_ENV, str(tmp_path))
    with library_log("optimize") as captured:
        logging.getLogger("s61_a_library_never_configured").warning("Please consider to run pre-processing")
        # loggers nobody configured: earlier tests quiet "onnxslim" and Locust's dictConfig disables older ones
        logging.getLogger("s61_another_library").warning("slimmed %d nodes", 3)
    header, *lines = (tmp_path / "quantserve.log").read_text().splitlines()
    assert header.startswith(f"== quantserve optimize (pid {os.getpid()}, ")
    assert len(lines) == 2 and all(f" pid {os.getpid()} " in line for line in lines), lines
    assert lines[1].endswith(f"pid {os.getpid()} s61_another_library WARNING slimmed 3 nodes")
    assert captured.lines()[-1] == (
        f"2 library log messages kept in {tmp_path / 'quantserve.log'} (its lines marked pid {os.getpid()})"
    )
