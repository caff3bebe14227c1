"""A killed model instance is brought back for real on a serve that is not the first after a deploy.

Measured (probe pl, Triton 2.51): once the version folder's `__pycache__` exists (any serve but the first after a
deploy, every tritonserver restart), Triton treats a load of an unchanged model as a no-op: HTTP 200, no new stub.
serve said "reloaded after its instance died" while every request failed "Stub process … is not healthy". The first
serve after a deploy hid it: its stub writes `__pycache__` during the first load, which the reload saw as a change.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_dead_model_instance import _stub_of
from test_supervisor import Serve, serve_command

from serving.call_failures import RetryPolicy
from serving.client import TritonGrpcClient

pytestmark = pytest.mark.e2e


def test_a_killed_instance_answers_again_on_a_second_serve(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    command = serve_command(dense_build, tmp_path, ports, "--log-file", str(tmp_path / "triton.log"))
    first = Serve(command)
    try:
        first.wait_for("press Ctrl-C")
    finally:
        assert first.stop() == 0
    assert (tmp_path / "repo" / "dense" / "1" / "__pycache__").is_dir()
    server = Serve(command)  # the same repository, untouched since the first serve
    x = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    try:
        server.wait_for("press Ctrl-C")
        stub = _stub_of(server, "dense_0_0")
        with TritonGrpcClient(f"127.0.0.1:{ports[0]}", timeout_s=20, retry=RetryPolicy(max_attempts=1)) as client:
            expected = client.infer("dense", {"x": x})["probs"]
            os.kill(stub.pid, signal.SIGKILL)
            server.wait_for("dense_0_0", timeout_s=60)
            back = server.wait_for("after its instance died", timeout_s=120)
            assert "model 'dense' reloaded" in back, back
            new = _stub_of(server, "dense_0_0")
            assert new.pid != stub.pid and f"pid {new.pid}" in back, back
            np.testing.assert_allclose(client.infer("dense", {"x": x})["probs"], expected, rtol=1e-6)
    finally:
        server.stop()
