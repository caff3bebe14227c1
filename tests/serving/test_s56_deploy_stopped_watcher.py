"""A deploy without --url into a repository whose recorded `quantserve serve` is stopped or gone says the version is
written but not live; one whose serve runs says nothing more.

Measured (session 56, probe t): `kill -STOP` of serve, then deploy said "deployed … version 2", exit 0; version 1 was
still served 20 s later, and 2 was loaded only after SIGCONT. A real `sleep 60` child stands in for the serve process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantserve.cli import main
from serving import endpoints
from serving.endpoints import ServedEndpoints, record_path, write_record
from serving.watching_serve import watching_serve_note


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture
def serve_process() -> Iterator[subprocess.Popen[bytes]]:
    """A child standing in for `quantserve serve`; SIGKILLed by its pid and reaped at the end."""
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()


def record(repo: Path, pid: int, model_control: str = "explicit") -> Path:
    return write_record(ServedEndpoints(pid, str(repo), "127.0.0.1", 18498, 18499, 18497, model_control))


def stopped(process: subprocess.Popen[bytes]) -> None:
    """SIGSTOP `process` and wait until the kernel says so (waitpid with WUNTRACED)."""
    os.kill(process.pid, signal.SIGSTOP)
    _, status = os.waitpid(process.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)


def test_a_stopped_serve_is_named_with_how_to_resume_it(tmp_path: Path, serve_process: subprocess.Popen[bytes]) -> None:
    repo, pid = tmp_path / "repo", serve_process.pid
    record(repo, pid)
    stopped(serve_process)
    assert watching_serve_note(repo, 2) == (
        f"note: quantserve serve (pid {pid}) watching {repo} is stopped (SIGSTOP?): version 2 is written but not "
        f"live until it runs again (kill -CONT {pid})"
    )
    assert record_path(18498).exists()  # a stopped serve's record stays: it runs again


def test_a_running_serve_says_nothing(tmp_path: Path, serve_process: subprocess.Popen[bytes]) -> None:
    repo = tmp_path / "repo"
    record(repo, serve_process.pid)
    assert watching_serve_note(repo, 2) is None


def test_a_stopped_serve_of_another_repository_says_nothing(
    tmp_path: Path, serve_process: subprocess.Popen[bytes]
) -> None:
    record(tmp_path / "other", serve_process.pid)
    stopped(serve_process)
    assert watching_serve_note(tmp_path / "repo", 2) is None


@pytest.mark.parametrize("model_control", ["poll", "none"])
def test_a_stopped_serve_that_does_not_do_the_loading_says_nothing(
    tmp_path: Path, serve_process: subprocess.Popen[bytes], model_control: str
) -> None:
    """poll: tritonserver loads the change itself; none: deploy's own line says it is served from the next start."""
    repo = tmp_path / "repo"
    record(repo, serve_process.pid, model_control)
    stopped(serve_process)
    assert watching_serve_note(repo, 2) is None


@pytest.mark.parametrize("reaped", [True, False], ids=["gone", "zombie"])
def test_a_gone_serve_is_named_and_its_stale_record_removed(tmp_path: Path, reaped: bool) -> None:
    repo, process = tmp_path / "repo", subprocess.Popen(["sleep", "60"])
    path = record(repo, process.pid)
    os.kill(process.pid, signal.SIGKILL)
    try:
        if reaped:
            process.wait()
        else:  # killed, not yet reaped: a zombie
            os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        assert watching_serve_note(repo, 3) == (
            f"note: quantserve serve (pid {process.pid}), recorded as watching {repo}, is gone (its record was "
            f"stale, now removed): version 3 is written, and no quantserve serve loads it until one starts on {repo}"
        )
        assert not path.exists()
    finally:
        process.wait()


def test_a_pid_reused_after_the_record_was_written_is_a_gone_serve(
    tmp_path: Path, serve_process: subprocess.Popen[bytes]
) -> None:
    repo = tmp_path / "repo"
    path = record(repo, serve_process.pid)
    os.utime(path, (1.0, 1.0))  # written long before this process started
    stopped(serve_process)
    assert (watching_serve_note(repo, 2) or "").endswith(f"no quantserve serve loads it until one starts on {repo}")


def test_deploy_into_a_stopped_serves_repository_says_so_and_exits_0(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_process: subprocess.Popen[bytes]
) -> None:
    repo, pid = tmp_path / "repo", serve_process.pid
    record(repo, pid)
    stopped(serve_process)
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"deployed {dense_build} as 'dense' version 1: {repo}/dense/1"
    assert out[1] == (
        f"note: quantserve serve (pid {pid}) watching {repo} is stopped (SIGSTOP?): version 1 is written but not "
        f"live until it runs again (kill -CONT {pid})"
    )


def test_deploy_into_a_running_serves_repository_says_nothing_new(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_process: subprocess.Popen[bytes]
) -> None:
    repo = tmp_path / "repo"
    record(repo, serve_process.pid)
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == [
        f"deployed {dense_build} as 'dense' version 1: {repo}/dense/1",
        f"config: {repo}/dense/config.pbtxt",
    ]


def test_a_stale_record_beside_a_running_serve_says_nothing_and_is_removed(
    tmp_path: Path, serve_process: subprocess.Popen[bytes]
) -> None:
    repo, gone = tmp_path / "repo", subprocess.Popen(["sleep", "60"])
    gone.kill()
    gone.wait()
    stale = write_record(ServedEndpoints(gone.pid, str(repo), "127.0.0.1", 18488, 18489, 18487, "explicit"))
    record(repo, serve_process.pid)
    assert watching_serve_note(repo, 2) is None
    assert not stale.exists() and record_path(18498).exists()


def test_a_rollback_into_a_stopped_serves_repository_is_refused_up_front(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], serve_process: subprocess.Popen[bytes]
) -> None:
    """A rollback without --url waits on the watcher: with it stopped, it had waited its 60 s for a load that could
    not come, then put the config back; it is refused before anything changes."""
    repo, pid = tmp_path / "repo", serve_process.pid
    for _ in range(2):
        assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    config = (repo / "dense" / "config.pbtxt").read_bytes()
    record(repo, pid)
    stopped(serve_process)
    capsys.readouterr()
    assert main(["rollback", "--repo", str(repo), "--name", "dense"]) == 2
    err = capsys.readouterr().err
    assert f"quantserve serve (pid {pid}) watching {repo} is stopped (SIGSTOP?): nothing rolled back" in err, err
    assert (repo / "dense" / "config.pbtxt").read_bytes() == config
