"""A process that has exited but is not yet reaped (a zombie) is dead: `serve` killed with SIGKILL and started again
at once on the same repository was refused as "already served by quantserve serve (pid N …)", N its own dead pid,
until its parent reaped it (1–1.5 s here)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from optimizer.scratch import process_alive


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_an_unreaped_child_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _state(child.pid) != "Z":
            time.sleep(0.05)  # it exits; nobody waits for it yet, so it stays a zombie
        assert not process_alive(child.pid)
    finally:
        child.wait()


def test_a_running_process_is_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
