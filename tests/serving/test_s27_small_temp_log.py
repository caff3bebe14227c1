"""A server started with no log_path logs to a file it makes in the temp folder; one was left per start (119 in
/tmp after a session). Removed at a clean stop (exit 0 on SIGTERM), kept where the server was killed or a start
failed: the error lines name it. A real tritonserver on an empty repository (about a second each)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving.server import TritonServer

pytestmark = pytest.mark.e2e

BROKEN = 'name: "broken"\nbackend: "no_such_backend_here"\nmax_batch_size: 0\n'


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp folder the server's own log goes to, here under tmp_path."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def logs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("quantserve-tritonserver-*.log"))


def test_a_clean_stop_removes_its_temp_log_a_kill_keeps_it(
    tmp_path: Path, temp_folder: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    (tmp_path / "repo").mkdir()
    server = triton_server_factory(tmp_path / "repo", log_path=None)
    assert server.log_path is not None and server.log_path.parent == temp_folder and logs(temp_folder)
    server.stop()
    assert logs(temp_folder) == [] and server.log_path is None
    server.start()  # a new log for the new start
    killed = server.log_path
    server.stop(kill=True)  # a hung server's stop: what it logged may say why
    assert killed is not None and logs(temp_folder) == [killed.name]


def test_a_failed_start_keeps_the_temp_log_it_names(
    tmp_path: Path, temp_folder: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    (tmp_path / "repo" / "broken" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "broken" / "config.pbtxt").write_text(BROKEN)
    server = triton_server_factory(tmp_path / "repo", start=False, log_path=None)
    with pytest.raises(QuantserveError) as failed:
        server.start()
    (kept,) = logs(temp_folder)
    assert f"(log: {temp_folder / kept})" in str(failed.value)
    server.stop()
    assert logs(temp_folder) == [kept]
