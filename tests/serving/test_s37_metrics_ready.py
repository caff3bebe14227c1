"""A started server's metrics endpoint answers as soon as `start` returns.

Before: `start` returned once gRPC and HTTP said ready, but Triton opens its metrics endpoint after them (94 ms later
in one log here), so a scrape straight after `start` was refused now and then: CI saw a test's watcher thread die of
"Triton metrics endpoint not reachable (Connection refused)", the model it was to unload stayed loaded, and the
load test it watched ran its whole window (exit 0 where 1 was asserted). A load test's first read of the counters
met the same race."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from loadtest.triton_metrics import scrape
from serving.ports import accepts_connections
from serving.server import ServerOptions, TritonServer


def test_ready_waits_for_a_metrics_endpoint_that_opens_late(tmp_path: Path) -> None:
    server = TritonServer(ServerOptions.on_free_ports(tmp_path))
    port = server.ports["metrics"]
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def open_late() -> None:
        time.sleep(0.5)
        listener.bind(("127.0.0.1", port))
        listener.listen()

    opener = threading.Thread(target=open_late)
    server._process = subprocess.Popen(["sleep", "30"])  # a live process: the wait checks it has not died
    try:
        assert not accepts_connections("127.0.0.1", port)
        opener.start()
        server._wait_metrics(time.monotonic() + 10)
        assert accepts_connections("127.0.0.1", port)
    finally:
        opener.join()
        listener.close()
        server._process.kill()
        server._process.wait()


@pytest.mark.e2e
def test_metrics_answer_straight_after_each_start(triton_server_factory, tmp_path: Path) -> None:
    from serving_models import make_build_dir

    from serving.deploy import deploy

    repo = tmp_path / "repo"
    deploy(make_build_dir(tmp_path / "build"), repo, "dense", max_batch=8)
    for _ in range(2):
        server = triton_server_factory(repo)
        try:
            assert scrape(server.metrics_url)  # raised "not reachable (Connection refused)" now and then
        finally:
            server.stop()
