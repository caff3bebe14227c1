"""A tritonserver killed at stop because it outlived SIGTERM is said so, with the log it kept.

Measured (session 54): after a model's process died and serve reloaded the model, tritonserver kept counting a model
live at SIGTERM ("Found 1 live models"), was killed by serve 20 s later, and serve said only "stopped", the log kept
in the temp folder without a word. Here the real tritonserver gets no time to exit (stop_timeout_s ~0).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.cli.commands.serve import _say_stopped
from serving.deploy import deploy
from serving.server import TritonServer


@pytest.fixture
def repo(dense_build: Path, tmp_path: Path) -> Path:
    deploy(dense_build, tmp_path / "repo", "dense")
    return tmp_path / "repo"


def test_a_server_killed_at_stop_is_said_killed_naming_its_log(
    repo: Path, triton_server_factory: Callable[..., TritonServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = triton_server_factory(repo, stop_timeout_s=0.001)
    log = server.log_path
    server.stop()
    assert server.killed_at_stop
    _say_stopped(server)
    said = f"stopped: tritonserver had not exited 0.001 s after SIGTERM and was killed (log kept: {log})"
    assert said in capsys.readouterr().out
    assert log is not None and log.is_file()


def test_a_clean_stop_says_stopped(
    repo: Path, triton_server_factory: Callable[..., TritonServer], capsys: pytest.CaptureFixture[str]
) -> None:
    server = triton_server_factory(repo)
    server.stop()
    assert not server.killed_at_stop
    _say_stopped(server)
    assert capsys.readouterr().out.rstrip().endswith("stopped")
