"""A model instance whose process is stopped (SIGSTOP) is named once while it lasts, and again when it runs again.

Measured (probe pl, Triton 2.51): the stub of a Python backend model stopped for 15 s; Triton's live and the model's
ready endpoints kept answering 200 while every request failed "Stub process … is not healthy", and serve said
nothing. The "stubs" here are Python children of this test process with the stub's command line (test_instance_watch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from test_instance_watch import _start_stub, stubs  # noqa: F401  # `stubs` is the fixture

from serving.instance_recovery import stop_line
from serving.model_states import InstanceStop, InstanceWatch, ModelInstance


def _until_state(pid: int, states: str) -> None:
    """Until /proc says the process is in one of `states` (a signal's effect is not immediate)."""
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in states:
        assert time.monotonic() < deadline, f"{pid} not in state {states}"
        time.sleep(0.01)


def test_a_stopped_stub_is_named_once_after_a_second_and_when_it_runs_again(
    tmp_path: Path,
    stubs: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    pid = _start_stub(tmp_path, "dense", "dense_0_0", stubs)
    instance = ModelInstance("dense", "1", "dense_0_0", pid)
    watch = InstanceWatch()
    watch.learn(os.getpid())
    os.kill(pid, signal.SIGSTOP)
    _until_state(pid, "T")
    watch.dead(os.getpid())
    assert watch.stops(100.0) == []  # first seen stopped
    watch.dead(os.getpid())
    assert watch.stops(100.5) == []  # a stop shorter than a second is not said
    watch.dead(os.getpid())
    assert watch.stops(102.0) == [InstanceStop(instance, "SIGSTOP", 2.0, still=True)]
    watch.dead(os.getpid())
    assert watch.stops(110.0) == []  # said once
    os.kill(pid, signal.SIGCONT)
    _until_state(pid, "RS")
    watch.dead(os.getpid())
    assert watch.stops(115.0) == [InstanceStop(instance, "", 15.0, still=False)]
    watch.dead(os.getpid())
    assert watch.stops(116.0) == []


def test_a_stopped_stub_that_is_killed_is_named_dead_only(
    tmp_path: Path,
    stubs: list[subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    pid = _start_stub(tmp_path, "dense", "dense_0_0", stubs)
    watch = InstanceWatch()
    watch.learn(os.getpid())
    os.kill(pid, signal.SIGSTOP)
    _until_state(pid, "T")
    watch.dead(os.getpid())
    assert watch.stops(100.0) == []
    watch.dead(os.getpid())
    assert [stop.still for stop in watch.stops(102.0)] == [True]
    os.kill(pid, signal.SIGKILL)
    _until_state(pid, "Z")
    watch.dead(os.getpid())
    assert watch.stops(103.0) == []  # no "runs again" for a dead one
    assert [i.pid for i, _ in watch.dead(os.getpid())] == [pid]


def test_stop_lines() -> None:
    instance = ModelInstance("dense", "1", "dense_0_0", 4242)
    assert stop_line(InstanceStop(instance, "SIGSTOP", 2.4, still=True)) == (
        "model 'dense' instance dense_0_0 (version 1, pid 4242) is stopped (SIGSTOP) for 2 s: its requests fail "
        "while it is (Triton still calls the model ready)"
    )
    assert stop_line(InstanceStop(instance, "", 15.2, still=False)) == (
        "model 'dense' instance dense_0_0 (version 1, pid 4242) runs again after 15 s stopped"
    )
