"""A readiness call unanswered for its whole deadline, on a port that takes connections, is a hung server, said then.

Measured (session 54): `infer --timeout 5` against a SIGSTOPped tritonserver said it was hung after 27 s: the runner's
readiness wait asked readiness (10 s, unanswered), then liveness (10 s more), before its 10 s connect deadline let it
say so. A listening socket nobody answers stands in for the stopped process here (the kernel accepts for both).
"""

from __future__ import annotations

import socket

import pytest

from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient

HUNG = "is hung: its port takes connections but it answers nothing"


def test_an_unanswered_readiness_call_names_the_server_hung_without_asking_liveness(
    silent_port: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(TritonGrpcClient, "is_server_live", lambda self: asked.append("live") or False)
    with TritonGrpcClient(silent_port, timeout_s=1.0) as client, pytest.raises(QuantserveError) as refused:
        client.wait_model_ready("m", timeout_s=30.0)
    assert str(refused.value).startswith(f"the Triton server at {silent_port} {HUNG}")
    assert asked == []


def test_a_port_nobody_listens_on_is_still_waited_for_as_a_server_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{free.getsockname()[1]}"
    monkeypatch.setattr("serving.client.CONNECT_TIMEOUT_S", 0.5)
    with TritonGrpcClient(closed, timeout_s=1.0) as client, pytest.raises(QuantserveError) as refused:
        client.wait_model_ready("m", timeout_s=30.0)
    assert str(refused.value) == f"no Triton server answers at {closed}"
