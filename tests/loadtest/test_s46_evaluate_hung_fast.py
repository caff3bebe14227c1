"""evaluate names a hung server at its first unanswered config read (session 46: against a SIGSTOPped tritonserver it
took 37-47 s to say hung, each model's config read waiting 10 s, then readiness 20 s); a server that answers, however
slowly within the read's limit, or refuses the connection (not started yet) is not called hung."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

from loadtest.evaluator import evaluate_accuracy
from loadtest.served_answers import served_config
from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient

HUNG = "is hung: its port takes connections but it answers nothing"


def test_evaluate_names_a_hung_server_at_its_first_unanswered_read(
    silent_port: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    model_config = TritonGrpcClient.model_config

    def counted(client: TritonGrpcClient, model: str) -> dict[str, Any]:
        read.append(model)
        return model_config(client, model)

    monkeypatch.setattr(TritonGrpcClient, "model_config", counted)
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32), labels=np.zeros(4, np.int64))
    with pytest.raises(QuantserveError) as refused:
        evaluate_accuracy(silent_port, ["m_int8"], "m_fp32", data)
    assert str(refused.value).startswith(f"the Triton server at {silent_port} {HUNG}")
    assert read == ["m_fp32"]  # each model's read had waited its own 10 s, then the reference's readiness


def test_a_refused_connection_is_no_config_not_a_hung_server() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{free.getsockname()[1]}"
    assert served_config(closed, "m") is None  # the readiness wait then waits for a server starting up


class SlowConfig(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """Answers a model's config 1 s after being asked: a busy server, alive."""

    def ModelConfig(self, request: Any, context: Any) -> Any:  # the gRPC method's name
        time.sleep(1.0)
        return service_pb2.ModelConfigResponse(config=model_config_pb2.ModelConfig(name=request.name))


@pytest.fixture
def slow_url() -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(SlowConfig(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_a_slow_answer_is_read_not_called_hung(slow_url: str) -> None:
    assert served_config(slow_url, "m") == {"name": "m"}
