"""`InstanceWatch` names a model instance whose process died unasked, once, with how it ended; a stub its parent
reaped (Triton stopping an instance on an unload) is never named.

The "server" here is this test process and each "stub" a Python child whose command line is the Python backend
stub's (program, model file, shm region, two sizes, parent pid, library folder, ipc handle, instance name).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.model_states import InstanceWatch, ModelInstance, model_instance


def _stub_argv(model_file: Path, instance: str) -> list[str]:
    stub = "/backends/python/triton_python_backend_stub"
    return [stub, str(model_file), "shm", "1", "1", "1", "/lib", "0", instance, "DEFAULT"]


@pytest.fixture
def stubs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def _start_stub(tmp_path: Path, model: str, instance: str, started: list[subprocess.Popen[bytes]]) -> int:
    model_file = tmp_path / "repo" / model / "1" / "model.py"
    model_file.parent.mkdir(parents=True, exist_ok=True)
    model_file.write_text("import time\ntime.sleep(120)\n")
    process = subprocess.Popen(_stub_argv(model_file, instance), executable=sys.executable)
    started.append(process)
    return process.pid


def _until_zombie(pid: int) -> None:
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, f"{pid} did not end"
        time.sleep(0.05)


def test_a_killed_stub_is_named_once_with_its_signal_and_a_reaped_one_never(
    tmp_path: Path, stubs: list[subprocess.Popen[bytes]]
) -> None:
    killed = _start_stub(tmp_path, "dense", "dense_0_0", stubs)
    stopped = _start_stub(tmp_path, "other", "other_0_0", stubs)
    watch = InstanceWatch()
    watch.learn(os.getpid())
    os.kill(killed, signal.SIGKILL)
    os.kill(stopped, signal.SIGTERM)
    stubs[1].wait()  # reaped at once, as Triton does for an instance it stops
    _until_zombie(killed)
    assert watch.dead(os.getpid()) == []  # a zombie seen once may be a stub being reaped right now
    ((instance, how),) = watch.dead(os.getpid())
    assert instance == ModelInstance("dense", "1", "dense_0_0", killed)
    assert how == "killed by SIGKILL (kill -9, or the kernel's out-of-memory killer)"
    assert watch.dead(os.getpid()) == []  # named once


def test_only_stub_command_lines_are_instances() -> None:
    argv = _stub_argv(Path("/repo/dense/3/model.py"), "dense_0_1")
    assert model_instance(7, argv) == ModelInstance("dense", "3", "dense_0_1", 7)
    assert model_instance(7, ["/usr/bin/python", *argv[1:]]) is None
    assert model_instance(7, argv[:5]) is None
