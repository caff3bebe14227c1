"""A gRPC `--url` given with a scheme (`http://host:port`) is refused at once: it waited ~12 s, then said "no Triton
server answers" though Triton answered there."""

from __future__ import annotations

import os
import time

import pytest

from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient
from serving.endpoints import ServedEndpoints, recorded


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "https://127.0.0.1:9/v2"])
def test_a_scheme_is_refused_before_any_connection(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(QuantserveError) as raised:
        TritonGrpcClient(url, timeout_s=30)
    assert time.monotonic() - started < 1
    scheme = url.split("://")[0]
    assert str(raised.value) == (
        f"{url}: a gRPC address is host:port, with no {scheme}:// (that is for Triton's HTTP API); pass Triton's gRPC "
        "port as --url host:port (8001 by default; `quantserve serve` prints it)"
    )


@pytest.mark.parametrize("port", [9100, 9101, 9102])
def test_a_recorded_server_names_its_grpc_port_whichever_of_its_ports_was_given(port: int) -> None:
    record = ServedEndpoints(os.getpid(), "/repo", "127.0.0.1", 9101, 9100, 9102)
    with recorded(record), pytest.raises(QuantserveError) as raised:
        TritonGrpcClient(f"http://localhost:{port}")
    assert str(raised.value).endswith(
        "(that is for Triton's HTTP API); its gRPC port is localhost:9101: pass --url localhost:9101"
    )
