"""A plain tritonserver under --model-control-mode poll that did not load a model at its next look: the line said "its
log names why" and named no log (session 59). Now it names where to look, as the lines of a server quantserve
started do (`(log: …)`): the server's --log-file, else the file its stderr writes to, else its stderr by pid."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_s59_plain_triton_wait import needs_triton

from serving.server import TritonServer
from serving.server_mode import ListeningServer, listening_tritonserver, stderr_file


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A child process whose stderr writes to a file (as `tritonserver … 2> log` does), stopped by its pid."""
    log = tmp_path / "triton.log"
    with open(log, "ab") as err:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stderr=err)
    try:
        yield child, log
    finally:
        child.kill()
        child.wait()


def test_the_log_file_its_command_line_names_is_read() -> None:
    argv = ["tritonserver", "--model-control-mode=poll", "--log-file", "/var/log/triton.log"]
    assert ListeningServer.from_argv(42, argv) == ListeningServer(42, "poll", 15.0, 8000, "/var/log/triton.log")


def test_the_file_its_stderr_writes_is_found(sleeper: tuple[subprocess.Popen[bytes], Path]) -> None:
    child, log = sleeper
    assert stderr_file(child.pid) == str(log)


def test_a_stderr_that_is_no_file_or_no_process_gives_none() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stderr=subprocess.PIPE) as child:
        try:
            assert stderr_file(child.pid) is None
        finally:
            child.kill()
    assert stderr_file(child.pid) is None  # gone


@pytest.mark.parametrize(
    ("log_path", "said"),
    [
        ("/srv/triton/server.log", "log: /srv/triton/server.log)"),
        (None, "log: tritonserver's stderr, where pid 4242 was started (no --log-file; not a file))"),
    ],
)
def test_the_poll_line_names_where_the_log_is(log_path: str | None, said: str) -> None:
    server = ListeningServer(4242, "poll", 2.0, 8000, log_path)
    line, coming = server.unloaded("127.0.0.1:19641", "b", waited_s=30.0)
    assert not coming
    assert line == (
        "127.0.0.1:19641: model 'b' is in the repository but not loaded after 30 s: tritonserver (pid 4242) runs with "
        "--model-control-mode=poll and looks every 2 s, yet did not load it: it refused the folder before loading it "
        f"(its log names why: a config.pbtxt it cannot read, or one named unlike its folder; {said}"
    )


@needs_triton
@pytest.mark.e2e
def test_a_polling_servers_line_names_the_log_it_writes(
    tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    server = triton_server_factory(repo, model_control="poll", log_path=tmp_path / "logs" / "triton.log")
    found = listening_tritonserver(server.grpc_url)
    assert found is not None and found.pid == server.pid and found.model_control == "poll"
    assert found.log_path == str(tmp_path / "logs" / "triton.log")
    line, _ = found.unloaded(server.grpc_url, "b", waited_s=found.poll_s + 60)
    assert line is not None and line.endswith(f"; log: {tmp_path / 'logs' / 'triton.log'})")
