"""A model instance whose process dies (kill -9 of its Python backend stub, an OOM kill) is noticed and reloaded.

Triton 2.51 keeps such a model READY while every request to it fails with "Stub process … is not healthy";
`quantserve serve` says which instance died and how, and reloads that model alone (the tritonserver stays).
A reload that fails leaves the model unloaded: not ready, rather than ready and failing every request.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
from test_supervisor import Serve, serve_command

from serving.call_failures import RetryPolicy
from serving.client import TritonGrpcClient

pytestmark = pytest.mark.e2e
BROKEN_MODEL_PY = "raise RuntimeError('this model cannot start')\n"


def _stub_of(server: Serve, instance: str) -> psutil.Process:
    """The running stub of `instance` (the killed one stays a zombie until Triton unloads its instance)."""
    running = [p for p in server.tritonserver().children() if p.status() != psutil.STATUS_ZOMBIE]
    stubs = [p for p in running if instance in p.cmdline()]
    assert len(stubs) == 1, [p.cmdline() for p in running]
    return stubs[0]


def test_a_killed_model_instance_is_reloaded_and_a_failed_reload_leaves_it_not_ready(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    server = Serve(serve_command(dense_build, tmp_path, ports, "--log-file", str(tmp_path / "triton.log")))
    x = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    try:
        server.wait_for("press Ctrl-C")
        triton, stub = server.tritonserver(), _stub_of(server, "dense_0_0")
        with TritonGrpcClient(f"127.0.0.1:{ports[0]}", timeout_s=20, retry=RetryPolicy(max_attempts=1)) as client:
            expected = client.infer("dense", {"x": x})["probs"]
            os.kill(stub.pid, signal.SIGKILL)
            died = server.wait_for("dense_0_0", timeout_s=60)
            assert f"pid {stub.pid}" in died and "killed by SIGKILL" in died and "model 'dense'" in died, died
            server.wait_for("model 'dense' reloaded", timeout_s=120)
            np.testing.assert_allclose(client.infer("dense", {"x": x})["probs"], expected, rtol=1e-6)
            assert server.tritonserver().pid == triton.pid  # the model alone came back, not the whole server

            (tmp_path / "repo" / "dense" / "1" / "model.py").write_text(BROKEN_MODEL_PY)
            os.kill(_stub_of(server, "dense_0_0").pid, signal.SIGKILL)
            # writing model.py is itself a file change whose reload fails first; this is the dead instance's line
            failed = server.wait_for("reload failed after its instance died", timeout_s=120)
            assert "model 'dense'" in failed and "not ready" in failed, failed
            assert not client.is_model_ready("dense")
        assert server.tritonserver().pid == triton.pid
    finally:
        server.stop()
