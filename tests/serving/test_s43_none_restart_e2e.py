"""Under `serve --model-control none`, a tritonserver restart that serves a version deployed while it ran names it.

Measured (session 43, probe d): deploy of version 2 (a worse INT8 build) under none was not served; a kill -9's restart
served it, and serve said only "tritonserver ready again (pid N) 2.4 s after restart".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_supervisor import Serve, serve_command

from quantserve.cli import main
from serving.control import ControlClient

pytestmark = pytest.mark.e2e


def test_a_restart_under_none_names_the_version_it_now_serves(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int], capsys: pytest.CaptureFixture[str]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    flags = ["--model-control", "none", "--log-file", str(tmp_path / "triton.log")]
    server = Serve(serve_command(dense_build, tmp_path, ports, *flags))
    try:
        server.wait_for("press Ctrl-C")
        capsys.readouterr()
        assert main(["deploy", str(dense_build), "--repo", str(tmp_path / "repo"), "--name", "dense"]) == 0
        assert "version 2: " in (out := capsys.readouterr().out) and "on disk, not served" in out
        control = ControlClient(f"127.0.0.1:{ports[1]}", timeout_s=5)
        assert control.ready_versions("dense") == [1]
        server.tritonserver().kill()
        line = server.wait_for("now serves version", timeout_s=120)
        assert "now serves version 2 of 'dense', was 1 (changed on disk while it ran" in line, server.seen
        assert control.ready_versions("dense") == [2]
    finally:
        assert server.stop() == 0
