"""`infer` whose server stopped answering mid-run said "start it again" even where `serve`'s watchdog had restarted
it meanwhile: as `evaluate`'s line (`loadtest.evaluator_failures.answers_now`), a server that answers again by the
time the run fails is said to, and no restart asked. A stand-in gRPC server answers Triton's ServerLive."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from fake_runner import FakeRunner
from tritonclient.grpc import service_pb2, service_pb2_grpc

from quantserve import cli
from serving.triton_runner import ServerStopped


class LiveOnly(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """Says it is live; nothing else (a restarted server, as far as the check asks)."""

    def ServerLive(self, request: Any, context: Any) -> Any:  # the gRPC method's name
        return service_pb2.ServerLiveResponse(live=True)


@pytest.fixture
def live_url() -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(LiveOnly(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def infer_stopped(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`infer` on `url` whose requests stop after 3 answered batches: the server went away."""
    import quantserve.data
    import quantserve.runner
    import serving.triton_runner

    def stop(runner: Any, batches: Any, whole: bool = False, pad: bool = False) -> Any:
        raise ServerStopped(url, answered=3)

    monkeypatch.setattr(serving.triton_runner, "TritonRunner", FakeRunner)
    monkeypatch.setattr(
        quantserve.data,
        "load_npz",
        lambda path, specs, **_: SimpleNamespace(batches=lambda size: [], requests=SimpleNamespace(whole=False)),
    )
    monkeypatch.setattr(quantserve.runner, "run_batches", stop)
    return cli.main(["infer", "--url", url, "--model", "mlp", "--data", str(tmp_path / "d.npz")])


def test_a_server_that_answers_again_is_not_asked_to_be_started(
    live_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert infer_stopped(live_url, tmp_path, monkeypatch) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: the server at {live_url} stopped answering during the run (after 3 batches answered) "
        "and answers again now (restarted meanwhile?); nothing of the run counts: run infer again\n"
    )


def test_a_server_still_gone_is_asked_to_be_started(
    free_port_factory: Callable[[], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"127.0.0.1:{free_port_factory()}"
    assert infer_stopped(url, tmp_path, monkeypatch) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: the server at {url} stopped answering during the run (after 3 batches answered); "
        "nothing of the run counts: start it again and run infer again\n"
    )
