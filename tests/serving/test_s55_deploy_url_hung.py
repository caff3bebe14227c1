"""`deploy --url` and `rollback --url` tell a hung server and one that `serve` is restarting from no server at all.

Measured (session 55): against a SIGSTOPped tritonserver both said "no Triton server answers at … (no answer within
5 s)", where infer on the same server named it hung; 0.3 s after a SIGKILL, deploy said "Connection refused" while
serve restarted it (ready 3.4 s later). A listening socket nobody answers stands in for the stopped process (the
kernel accepts for both); serve's run record, written here for this process, stands in for a live supervisor.
"""

from __future__ import annotations

import os
import socket
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantserve.cli import main
from quantserve.cli.commands import deploy as deploy_command
from quantserve.errors import QuantserveError
from serving.endpoints import ServedEndpoints, recorded

HUNG = "is hung: its port takes connections but it answers nothing (stopped, deadlocked?)"


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_record(repo: Path, http_port: int) -> ServedEndpoints:
    """A `quantserve serve` of `repo` by this (live) process, with `http_port` as its HTTP port."""
    return ServedEndpoints(os.getpid(), str(repo.resolve()), "127.0.0.1", http_port + 1, http_port, http_port + 2)


def test_deploy_url_of_a_hung_server_names_it_hung(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], silent_port: int
) -> None:
    url, repo = f"127.0.0.1:{silent_port}", tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: the Triton server at {url} {HUNG}; kill it"), err
    assert err.endswith("let `serve` restart it (--hang-timeout): nothing deployed\n"), err
    assert not repo.exists()


def test_rollback_url_of_a_hung_server_that_serve_supervises_names_both(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], silent_port: int
) -> None:
    repo = tmp_path / "repo"
    for _ in range(2):
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    capsys.readouterr()
    url = f"127.0.0.1:{silent_port}"
    with recorded(serve_record(repo, silent_port)):
        assert main(["rollback", "--repo", str(repo), "--name", "dense", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: the Triton server at {url} {HUNG}"), err
    assert err.endswith(
        f"(stopped, deadlocked?); quantserve serve (pid {os.getpid()}) restarts it once its --hang-timeout passes: "
        "run this again then: nothing rolled back\n"
    ), err
    assert sorted(p.name for p in (repo / "dense").iterdir() if p.name.isdigit()) == ["1", "2"]


def refused_then(answers: list[int | None]) -> object:
    """`_live_status` as a server restarting answers it: refused (None) until a status."""

    def status(live: str, timeout_s: float) -> int:
        answer = answers.pop(0)
        if answer is None:
            raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
        return answer

    return status


def test_a_refused_url_that_serve_is_restarting_is_waited_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy_command, "RESTART_POLL_S", 0.01)
    monkeypatch.setattr(deploy_command, "_live_status", refused_then([None, None, None, 200]))
    url = f"127.0.0.1:{closed_port}"
    with recorded(serve_record(tmp_path / "repo", closed_port)):
        deploy_command.check_server_answers(url)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"note: no Triton server answers at {url} (Connection refused); quantserve serve (pid {os.getpid()}) "
        f"restarts it: waiting up to {deploy_command.RESTART_WAIT_S:g} s"
    )
    assert out[1].startswith(f"note: the server at {url} answers again, ") and len(out) == 2


def test_a_restart_that_does_not_come_back_is_named_and_nothing_done(
    tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy_command, "RESTART_POLL_S", 0.01)
    monkeypatch.setattr(deploy_command, "RESTART_WAIT_S", 0.05)
    url = f"127.0.0.1:{closed_port}"
    with recorded(serve_record(tmp_path / "repo", closed_port)), pytest.raises(QuantserveError) as refused:
        deploy_command.check_server_answers(url, nothing="nothing rolled back")
    assert str(refused.value) == (
        f"no Triton server answers at {url} (Connection refused), and quantserve serve (pid {os.getpid()}), which "
        "restarts it, has not brought it back within 0.05 s (its output says why): nothing rolled back"
    )


def test_a_refused_url_with_no_serve_is_refused_at_once(closed_port: int) -> None:
    url = f"127.0.0.1:{closed_port}"
    with pytest.raises(QuantserveError) as refused:
        deploy_command.check_server_answers(url)
    assert str(refused.value) == f"no Triton server answers at {url} (Connection refused): nothing deployed"
