"""A tritonserver killed under the supervisor leaves no Python backend shared memory behind in /dev/shm.

Each stub's region (807 MB once, for a big model after batch-64 requests) outlived a kill -9 and every
restart added more; a graceful stop removes them. Each start now names its regions with its own prefix,
and the supervisor's stop before a restart removes what the dead server left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from quantserve.cli import main
from serving.client import TritonGrpcClient
from serving.restarts import RestartPolicy
from serving.server import SHM_DIR, ServerOptions
from serving.supervisor import Supervisor

pytestmark = pytest.mark.e2e

PREFIX_FLAG = "--backend-config=python,shm-region-prefix-name="


@pytest.fixture
def supervised(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> Iterator[tuple[Supervisor, list[str]]]:
    """A supervisor running (in a thread) a tritonserver that serves the dense model; its log lines in a list."""
    repo = tmp_path / "repo"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]) == 0
    ports = {f"{role}_port": free_port_factory() for role in ("grpc", "http", "metrics")}
    options = ServerOptions(repo, log_path=tmp_path / "triton.log", **ports)  # type: ignore[arg-type]
    lines: list[str] = []
    supervisor = Supervisor(options, RestartPolicy(max_restarts=2, initial_s=0.1), poll_s=0.2, log=lines.append)
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    try:
        supervisor.start()
        watcher.start()
        yield supervisor, lines
    finally:
        supervisor.stop()
        if watcher.is_alive():
            watcher.join(timeout=30)


def stub_regions(tritonserver: psutil.Process) -> list[str]:
    """The shm region each Python backend stub of `tritonserver` attached to (the stub's second argument)."""
    return [stub.cmdline()[2] for stub in tritonserver.children() if "python_backend_stub" in stub.name()]


def shm_prefix(tritonserver: psutil.Process) -> str | None:
    flags = [a for a in tritonserver.cmdline() if a.startswith(PREFIX_FLAG)]
    return flags[0].removeprefix(PREFIX_FLAG) if flags else None


def in_shm(prefix: str) -> list[str]:
    return sorted(p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix))


def wait_for(lines: list[str], text: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, f"no line with {text!r} within {timeout_s:.0f} s: {lines}"
        time.sleep(0.1)


def test_killed_tritonserver_leaves_no_python_backend_shm(supervised: tuple[Supervisor, list[str]]) -> None:
    supervisor, lines = supervised
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with TritonGrpcClient(supervisor.server.grpc_url, timeout_s=10) as client:
        client.infer("dense", {"x": x})
    first = psutil.Process(supervisor.server.pid)
    regions, first_prefix = stub_regions(first), shm_prefix(first)
    assert regions and all((SHM_DIR / r).exists() for r in regions), regions
    first.kill()  # SIGKILL: no chance to unlink its regions
    wait_for(lines, "ready again")
    assert [r for r in regions if (SHM_DIR / r).exists()] == [], "the dead server's regions are still in /dev/shm"
    assert first_prefix is not None and all(r.startswith(first_prefix) for r in regions), (first_prefix, regions)
    assert in_shm(first_prefix) == []
    second = psutil.Process(supervisor.server.pid)
    second_prefix = shm_prefix(second)
    assert second_prefix is not None and second_prefix != first_prefix
    with TritonGrpcClient(supervisor.server.grpc_url, timeout_s=10) as client:
        assert client.infer("dense", {"x": x})["probs"].shape == (3, 4)
    assert in_shm(second_prefix), "the restarted server's stubs use regions with its own prefix"
    supervisor.stop()
    assert in_shm(first_prefix) == [] and in_shm(second_prefix) == []
