"""A model load whose server dies meanwhile gives up at once, naming how it ended (session 32, issue 11 leftover 4).

tune's load of a trial's model waited out its whole 120 s timeout when tritonserver was killed while the model loaded:
the model's Python stub, a child of the server, inherits the HTTP connection and holds it open after the server is
gone (measured: SIGKILL 4 s into a 40 s load, the load still waiting at its 60 s timeout, the stub holding the
socket). Here a real short-lived process stands in for it, no tritonserver: it accepts the load request, hands the
connection to a child that outlives it, and is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from quantserve.errors import QuantserveError
from serving.control import ControlClient

SERVER = r"""
import socket, subprocess, sys, time
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
answer, _ = listener.accept()
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=[answer.fileno()])
print("held", flush=True)
time.sleep(60)
"""
TIMEOUT_S = 30.0  # the load's own bound: before the fix it waited this out, and said "timed out"


@pytest.fixture
def dying_server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The stand-in server and its URL; it is SIGKILLed once its child holds the load's connection."""
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"

        def kill_once_held() -> None:
            if server.stdout is not None and server.stdout.readline().strip() == "held":
                server.kill()

        threading.Thread(target=kill_once_held, daemon=True).start()
        yield server, url
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # its group: the child holding the connection too
        server.wait()


def exit_cause(process: subprocess.Popen[str]) -> str | None:
    code = process.poll()
    return None if code is None else f"killed by {signal.Signals(-code).name}"


def test_a_load_whose_server_was_killed_names_its_exit_cause(dying_server: tuple[subprocess.Popen[str], str]) -> None:
    server, url = dying_server
    with pytest.raises(QuantserveError) as failed:
        ControlClient(url, timeout_s=TIMEOUT_S, exit_cause=lambda: exit_cause(server)).load("m")
    assert str(failed.value) == f"{url}: loading 'm' failed: tritonserver killed by SIGKILL while loading it"


def test_without_its_process_a_load_notices_the_port_refusing(dying_server: tuple[subprocess.Popen[str], str]) -> None:
    """`deploy --url` and `rollback` know no process: a port that refuses connections is the server gone."""
    _, url = dying_server
    port = url.rsplit(":", 1)[1]
    with pytest.raises(QuantserveError) as failed:
        ControlClient(url, timeout_s=TIMEOUT_S).load("m")
    assert str(failed.value) == (
        f"{url}: loading 'm' failed: tritonserver stopped listening on port {port} (connection refused) "
        "while loading it"
    )
