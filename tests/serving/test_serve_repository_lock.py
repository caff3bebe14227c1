"""Two `quantserve serve` on one repository: the second is refused while the first is still starting.

Two started 0.5 s apart both ran ("tritonserver ready" twice), both watching and reloading the one repository:
the check read endpoint records written only once tritonserver was ready, 10-20 s after the start. The serve lock
(serving.repository_lock.serving_repository) is taken before anything starts and released by the kernel when its
holder dies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.repository_lock import serving_repository

HOLD = "import sys, time; from pathlib import Path; from serving.repository_lock import serving_repository\n"
HOLD += "with serving_repository(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(60)\n"


def test_a_held_repository_is_refused_by_any_path_to_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "link").symlink_to(repo)
    with serving_repository(repo):
        for path in (repo, tmp_path / "link", tmp_path / "." / "repo"):
            refused = rf"already served by quantserve serve \(pid {os.getpid()}\)"
            with pytest.raises(QuantserveError, match=refused), serving_repository(path):
                pass
    with serving_repository(tmp_path / "link"):  # released at the end of the block
        pass
    held = os.stat(repo)  # its own lock file gone (others' may lie there: a killed serve's is left, never held)
    assert list(Path(os.environ["QUANTSERVE_RUNTIME_DIR"]).glob(f"repository-{held.st_dev:x}-{held.st_ino:x}.*")) == []


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(repo)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(QuantserveError, match=rf"pid {holder.pid}\)"), serving_repository(repo):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with serving_repository(repo):  # its lock file is still there, but no process holds it
        pass


def holds_the_lock(serve: subprocess.Popen[bytes], repo: Path, output: Path) -> None:
    """Wait until `serve` holds `repo`'s serve lock (its pid in the lock file), not a fixed head start: the second
    serve was started 0.5 s after the first, and a `quantserve serve` takes the lock some 1.2 s after its start on an
    idle 2-core box (Python's start and imports), later on a loaded one. CI, session 41, three test processes on 2
    cores: the first took it after the second, which then started its tritonserver and ran, and the test timed out
    waiting 30 s for the second to be refused (the lock itself right: the first was refused)."""
    held = os.stat(repo)
    lock = Path(os.environ["QUANTSERVE_RUNTIME_DIR"]) / f"repository-{held.st_dev:x}-{held.st_ino:x}.lock"
    for _ in range(2400):  # 120 s: never reached unless the serve hangs before its first step
        assert serve.poll() is None, output.read_text()
        if lock.exists() and lock.read_text().strip() == str(serve.pid):
            return
        time.sleep(0.05)
    raise AssertionError(f"quantserve serve (pid {serve.pid}) never took the repository's lock: {output.read_text()}")


@pytest.mark.e2e
def test_a_second_serve_is_refused_while_the_first_is_starting(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "4"]) == 0
    serves = []
    try:
        for name in ("first", "second"):
            ports = [str(free_port_factory()) for _ in range(3)]
            command = [sys.executable, "-m", "quantserve", "serve", "--repo", str(repo), "--grpc-port", ports[0]]
            command += ["--http-port", ports[1], "--metrics-port", ports[2]]
            output = (tmp_path / f"{name}.out").open("w")
            serves.append(subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True))
            if name == "first":
                holds_the_lock(serves[0], repo, tmp_path / "first.out")
        first, second = serves
        rc = second.wait(timeout=30)  # without the lock it starts its own tritonserver and runs
        said = (tmp_path / "second.out").read_text()
        assert rc != 0 and f"already served by quantserve serve (pid {first.pid}), starting or running" in said, said
        assert len(said.strip().splitlines()) == 1, said
    finally:
        for serve in serves:
            if serve.poll() is None:
                os.killpg(serve.pid, signal.SIGTERM)
                try:
                    serve.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(serve.pid, signal.SIGKILL)
                    serve.wait()
