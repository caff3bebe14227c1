"""tritonserver killed just after a step's measured window closed (probe 58T's kill4.sh: the moment the step's
window.json appears): the step was labelled "tritonserver stopped during the measured window (… no process at the
end)" and its server figures were left out, because the listening pid was read once Locust had exited. The pid is
now read as the window closes (`recording.close_window`, `step_result.pid_at_window_end`): the window was whole."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from restarted_server import ServerOf, load_argv

from loadtest import recording_files
from loadtest.server_pids import listening_pid
from loadtest.step_result import pid_at_window_end
from quantserve.cli import main
from serving.server import TritonServer


def _kill_when_window_closes(window: Path, server: TritonServer, gave_up_s: float = 120.0) -> threading.Thread:
    """A thread that SIGKILLs tritonserver the moment `window` (the step's window.json) appears."""

    def watch() -> None:
        deadline = time.monotonic() + gave_up_s
        while not window.is_file() and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop(kill=True)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


@pytest.mark.e2e
def test_a_server_killed_after_the_window_closed_keeps_the_steps_figures(serve_mlp: ServerOf, tmp_path: Path) -> None:
    server, data = serve_mlp(("mlp",))
    served = server.pid
    out = tmp_path / "out"
    killer = _kill_when_window_closes(out / "raw" / "mlp-u1" / recording_files.WINDOW_FILE, server)
    try:
        main(load_argv(server, data, out, "mlp"))
    finally:
        killer.join()
    assert server.pid is None  # killed
    recorded = json.loads((out / "raw" / "mlp-u1" / recording_files.WINDOW_FILE).read_text())
    assert recorded["listening_pid"] == served  # as the window closed
    step = json.loads((out / "load-mlp.json").read_text())["results"][0]
    assert step["server_restarted"] is None, step["server_restarted"]
    assert step["server"] is not None and step["server"]["requests_succeeded"] > 0
    assert step["server_counters_left_out"] is None


def test_the_pid_is_read_from_the_window_file_not_looked_up_late(tmp_path: Path) -> None:
    window = tmp_path / recording_files.WINDOW_FILE
    window.write_text(json.dumps({"start": 1.0, "end": 2.0, "listening_pid": 4242}))
    assert pid_at_window_end(tmp_path, "127.0.0.1:1") == 4242  # nothing listens on port 1 now
    window.write_text(json.dumps({"start": 1.0, "end": 2.0, "listening_pid": None}))  # none listened as it closed
    assert pid_at_window_end(tmp_path, "127.0.0.1:1") is None


def test_a_lookup_that_failed_once_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil reads every process's sockets; one ending meanwhile can fail the lookup, which read as no server."""
    import psutil

    real, calls = psutil.net_connections, []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise psutil.NoSuchProcess(1)
        return real(*args, **kwargs)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        monkeypatch.setattr(psutil, "net_connections", failing_once)
        assert listening_pid(f"127.0.0.1:{listener.getsockname()[1]}") == os.getpid()
