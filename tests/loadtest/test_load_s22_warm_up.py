"""Against a real tritonserver: a closed-loop user's first request is a warm-up, outside the measured window.

The window opens when Locust has spawned every user (`spawning_complete`); the last users spawned sent their first
request after it, and a first request carries the user's gRPC connect and, on a fresh server, the model's first
inference (40–44 ms against a 2 ms p50, measured). Here the model's first batch sleeps `FIRST_BATCH_S`: only a
warm-up may wait on it, and Triton's count over the window (which holds the warm-ups the client does not report)
still agrees with the client's, so the server breakdown stays.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from quantserve.cli import main
from serving.server import TritonServer

pytestmark = pytest.mark.e2e
FIRST_BATCH_S = 1.5
# the deployed Python backend's `execute` sleeps once, on its first batch
FIRST_BATCH = (
    f"import time; (time.sleep({FIRST_BATCH_S}), setattr(self, '_warm', 1)) if not hasattr(self, '_warm') else 0"
)


@pytest.fixture
def cold_server(tmp_path: Path, triton_server_factory: Callable[..., TritonServer]) -> tuple[TritonServer, Path]:
    """A fresh server whose model has served nothing yet, its first batch slow."""
    repo, data = models.own_mlp_repo(tmp_path / "cold", ("mlp",), 8)
    model_py = repo / "mlp" / "1" / "model.py"
    head = "    def execute(self, requests: list[Any]) -> list[Any]:\n"
    assert head in model_py.read_text()
    model_py.write_text(model_py.read_text().replace(head, f"{head}        {FIRST_BATCH}\n"))
    return triton_server_factory(repo), data


def test_the_first_requests_are_warm_ups_outside_the_window(
    cold_server: tuple[TritonServer, Path], tmp_path: Path
) -> None:
    server, data = cold_server
    argv = ["loadtest", "--url", server.grpc_url, "--model", "mlp", "--data", str(data), "--users", "3"]
    argv += ["--duration", "2s", "--metrics-url", server.metrics_url, "--out", str(tmp_path / "load"), "--json"]
    assert main(argv) == 0
    result = json.loads((tmp_path / "load" / "load-mlp.json").read_text())["results"][0]
    assert result["requests"] > 50 and result["failed_requests"] == 0
    assert result["latency"]["max_ms"] < 1000 * FIRST_BATCH_S / 2, "a user's first request was measured"
    assert result["server"] is not None, result.get("server_counters_left_out")
    assert result["server"]["requests_succeeded"] >= result["requests"]  # Triton counted the warm-ups in it too
