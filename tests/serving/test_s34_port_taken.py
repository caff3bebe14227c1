"""A port the tool chose itself and something took before tritonserver bound it is chosen again.

CI (session 33's submission): a test server's gRPC port, picked free by binding port 0, was taken a moment later
(an ephemeral port: any outgoing connection may be handed it), and tritonserver exited 1 with "Socket
'127.0.0.1:48009' already in use". Tune's trials, bench, the demo and the test servers all start on ports the tool
chose; a port the user named is still an error naming it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving import server as server_module
from serving.deploy import deploy
from serving.server import ServerOptions, TritonServer


@pytest.fixture
def taken() -> Iterator[socket.socket]:
    """A port something listens on (no SO_REUSEPORT: gRPC's own bind fails on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock


def test_a_chosen_port_taken_before_tritonserver_binds_it_is_chosen_again(
    dense_build: Path, tmp_path: Path, taken: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy(dense_build, tmp_path / "repo", "dense", max_batch=8)
    port = taken.getsockname()[1]
    options = ServerOptions.on_free_ports(tmp_path / "repo", log_path=tmp_path / "triton.log")
    assert options.ports_chosen
    options = ServerOptions(**{**options.__dict__, "grpc_port": port})
    # taken after the check: tritonserver itself meets the port in use (the race CI lost)
    monkeypatch.setattr(server_module, "check_port_free", lambda host, port, role: None)
    with TritonServer(options) as server:
        assert server.ports["grpc"] != port and server.grpc_url.endswith(f":{server.ports['grpc']}")
        assert server.options.ports == server.ports
        assert server.loaded_models() == {"dense": ["1"]}
    assert "already in use" in (tmp_path / "triton.log").read_text()


def test_a_port_the_user_named_taken_is_an_error_naming_it(
    dense_build: Path, tmp_path: Path, taken: socket.socket
) -> None:
    deploy(dense_build, tmp_path / "repo", "dense", max_batch=8)
    port = taken.getsockname()[1]
    chosen = ServerOptions.on_free_ports(tmp_path / "repo")
    options = ServerOptions(
        tmp_path / "repo", grpc_port=port, http_port=chosen.http_port, metrics_port=chosen.metrics_port
    )
    with pytest.raises(QuantserveError, match=f"grpc port {port} on 127.0.0.1 is already in use"):
        TritonServer(options).start()
