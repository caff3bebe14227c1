"""SIGTERM to `quantserve serve` while a model it loads live is still initializing: the load is abandoned after a
bounded wait, tritonserver and its model processes are killed by pid, and one line names what was abandoned.

Measured (session 65): serve's own load request held tritonserver's shutdown open (Triton waits its exit timeout,
30 s, for open HTTP connections: "Timeout 30: Found 1 HTTP service connections"), so serve waited out its whole 20 s
stop timeout, killed it, and said only "tritonserver had not exited 20 s after SIGTERM and was killed".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from test_slow_model_loads import python_model
from test_supervisor import Serve, iter_lines, serve_command

pytestmark = pytest.mark.e2e


def _wait_for_log(log: Path, text: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {log} within {timeout_s:.0f} s")


def test_sigterm_during_a_live_load_abandons_it_and_leaves_nothing_running(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    log = tmp_path / "triton.log"
    server = Serve(serve_command(dense_build, tmp_path, ports, "--log-file", str(log)))
    try:
        server.wait_for("press Ctrl-C")
        triton = server.tritonserver()
        python_model(tmp_path / "repo", "slowinit", "time.sleep(300)")  # loaded live by serve's watcher
        _wait_for_log(log, "TRITONBACKEND_ModelInstanceInitialize: slowinit_0_0")  # its initialize has begun
        group = [triton, *triton.children(recursive=True)]
        assert server.stop() == 0
        output = "".join(server.seen) + "".join(iter_lines(server))
    finally:
        server.stop()
    assert "had not exited" not in output, output
    abandoned = [line for line in output.splitlines() if "abandoned" in line]
    assert len(abandoned) == 1 and "model 'slowinit'" in abandoned[0], output
    assert "version folders are as they were" in abandoned[0], abandoned
    assert output.rstrip().endswith("stopped"), output
    left = [p.pid for p in group if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"still running after serve exited: {left}"
