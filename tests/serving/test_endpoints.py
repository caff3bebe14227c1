"""`quantserve serve` records its ports; loadtest/evaluate find Triton's metrics port by the gRPC URL."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import endpoints
from serving.endpoints import ServedEndpoints, find_endpoints, find_metrics_url, metrics_hint, recorded


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(endpoints.RUNTIME_ENV, str(tmp_path / "run"))
    return tmp_path / "run"


def _record(pid: int, grpc: int = 9101, host: str = "127.0.0.1") -> ServedEndpoints:
    return ServedEndpoints(pid, "/repo", host, grpc, 9100, 9102)


def test_a_recorded_server_is_found_by_its_grpc_url_while_it_runs(runtime_dir: Path) -> None:
    with recorded(_record(os.getpid())) as path:
        assert path == runtime_dir / "serve-9101.json"
        assert find_endpoints("127.0.0.1:9101") == _record(os.getpid())
        assert find_metrics_url("localhost:9101") == "localhost:9102"  # the host the user reaches
        assert find_endpoints("127.0.0.1:9999") is None
        assert find_endpoints("10.1.2.3:9101") is None  # another machine's port 9101 is not this server
    assert not path.exists() and find_endpoints("127.0.0.1:9101") is None


def test_a_record_left_by_a_dead_process_is_ignored_and_removed(runtime_dir: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = endpoints.write_record(_record(int(gone.stdout)))
    assert find_endpoints("127.0.0.1:9101") is None and not path.exists()


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'nv_inference_count{model="m",version="1"} 4\n'
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_without_a_record_the_default_metrics_port_is_used_only_if_it_answers(
    metrics_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoints, "DEFAULT_METRICS_PORT", metrics_server)
    assert find_metrics_url("127.0.0.1:8001") == f"127.0.0.1:{metrics_server}"
    assert find_metrics_url("127.0.0.1:8123") is None  # not the default layout: no guess
    monkeypatch.setattr(endpoints, "DEFAULT_METRICS_PORT", 1)
    assert find_metrics_url("127.0.0.1:8001") is None


def test_the_hint_names_the_url_and_the_flag() -> None:
    hint = metrics_hint("127.0.0.1:9001")
    assert "127.0.0.1:9001" in hint and "--metrics-url HOST:PORT" in hint and "\n" not in hint
