"""A model folder's lock held by another process is waited on aloud and within a limit (session 53).

Before, `serve`, deploy and rollback waited on it in silence and forever: held 45 s by another process, `serve`
printed nothing and was ready after 50 s; a deploy suspended by Ctrl-Z held it and every later serve start hung.
Now the wait is said after LOCK_SAID_AFTER_S, naming the holder by the pid it wrote in the lock file, and given
up after LOCK_WAIT_S with an error naming the folder and the pid; nothing is changed by the one that gave up.
The limits are shortened here; each holder lets go after a few seconds, so the code before the fix fails, not hangs.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import serving.deploy as deploy_module
from serving import repository_lock
from serving.deploy import deploy
from serving.repository import STAGING_PREFIX, prepare_repository
from serving.repository_lock import LOCK_NAME, FolderLockTimeout, model_folder_lock
from serving.versions import existing_versions

ROOT = Path(__file__).resolve().parents[2]
HOLD = (
    "import os, signal, sys, time; from pathlib import Path; from serving.repository_lock import model_folder_lock\n"
    "with model_folder_lock(Path(sys.argv[1])):\n"
    "    print('held', flush=True)\n"
    "    if sys.argv[2] == 'stop':\n"
    "        os.kill(os.getpid(), signal.SIGSTOP)\n"
    "    time.sleep(6)\n"
)
# A quantserve before session 53 took the lock and wrote nothing in it.
HOLD_OLD = (
    "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
)
HOLD_OLD += "print('held', flush=True)\ntime.sleep(6)\n"
WHAT = "a deploy, rollback or withdrawal of that model"


@pytest.fixture(autouse=True)
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository_lock, "LOCK_SAID_AFTER_S", 0.2, raising=False)
    monkeypatch.setattr(repository_lock, "LOCK_WAIT_S", 1.5, raising=False)


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for holder in started:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def hold(holders: list[subprocess.Popen[str]], model_dir: Path, how: str = "run") -> int:
    """Start a process that holds `model_dir`'s lock (`how`: run, stop itself, or lock as an older quantserve)."""
    args = ["-c", HOLD_OLD, str(model_dir / LOCK_NAME)] if how == "old" else ["-c", HOLD, str(model_dir), how]
    holder = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    holders.append(holder)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder.pid


def test_a_held_lock_is_said_and_given_up_on_naming_the_folder_and_pid(
    tmp_path: Path, holders: list[subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    pid = hold(holders, model_dir)
    with pytest.raises(FolderLockTimeout) as raised, model_folder_lock(model_dir):
        pass
    assert str(raised.value) == (
        f"{model_dir}: gave up waiting for its lock after 1.5 s, held by pid {pid} ({WHAT}); nothing was changed: "
        f"let it finish or end it (kill {pid}), then try again"
    )
    said = f"waiting for {model_dir}'s lock, held by pid {pid} ({WHAT}); giving up after 1.5 s\n"
    assert capsys.readouterr().err == said


def test_a_stopped_holder_is_named_as_stopped(tmp_path: Path, holders: list[subprocess.Popen[str]]) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    pid = hold(holders, model_dir, "stop")
    stopped = f"held by pid {pid} ({WHAT}, stopped: resume it (fg, or kill -CONT {pid}))"
    refused = rf"^{re.escape(str(model_dir))}: .*{re.escape(stopped)}; "
    with pytest.raises(FolderLockTimeout, match=refused), model_folder_lock(model_dir):
        pass


def test_a_lock_file_without_a_pid_names_another_process(
    tmp_path: Path, holders: list[subprocess.Popen[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    hold(holders, model_dir, "old")
    with pytest.raises(FolderLockTimeout) as raised, model_folder_lock(model_dir):
        pass
    holder = f"another process ({WHAT}?)"
    assert str(raised.value) == (
        f"{model_dir}: gave up waiting for its lock after 1.5 s, held by {holder}; nothing was changed: "
        "let it finish, then try again"
    )
    assert f"held by {holder}" in capsys.readouterr().err


def test_the_holder_writes_its_pid_and_clears_it_on_release(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    with model_folder_lock(model_dir):
        assert (model_dir / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    assert (model_dir / LOCK_NAME).read_text() == ""  # a holder from before session 53 is not named as us
    fd = os.open(model_dir / LOCK_NAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: taken at once
    finally:
        os.close(fd)


def test_a_first_serve_refuses_a_held_folder_and_a_restart_leaves_it_out(
    tmp_path: Path, holders: list[subprocess.Popen[str]]
) -> None:
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    pid = hold(holders, repo / "m")
    with pytest.raises(FolderLockTimeout, match=rf"held by pid {pid} "):
        prepare_repository(repo)
    assert prepare_repository(repo, strict=False) == {"m": f"still locked after 1.5 s by pid {pid} ({WHAT})"}


def test_a_deploy_that_gives_up_on_the_lock_changes_nothing(
    dense_build: Path, tmp_path: Path, holders: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    first = deploy(dense_build, repo, "m", max_batch=4)
    config = first.config_path.read_bytes()
    staged = deploy_module.stage_version

    def stage_then_lose_the_lock(*args: object, **kwargs: object) -> None:
        staged(*args, **kwargs)  # type: ignore[arg-type]
        hold(holders, repo / "m")  # taken between the copy and the install, as by a rollback suspended there

    monkeypatch.setattr(deploy_module, "stage_version", stage_then_lose_the_lock)
    with pytest.raises(FolderLockTimeout, match=rf"^{re.escape(str(repo / 'm'))}: gave up waiting for its lock"):
        deploy(dense_build, repo, "m", max_batch=8)
    assert existing_versions(repo / "m") == [1]
    assert first.config_path.read_bytes() == config
    assert list((repo / "m").glob(f"{STAGING_PREFIX}*")) == []  # its staged copy removed
