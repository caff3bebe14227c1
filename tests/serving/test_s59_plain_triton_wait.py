"""A client waiting on a plain `tritonserver` (started by hand: no serve record) for a model that the repository
index lists with no state says at once that nothing will load it, naming the server's --model-control-mode.

Measured (session 58): against such a server, `wait_model_ready` for a model in the repository but not loaded waited
its whole timeout and said only "model 'm' not ready after 30 s". Under none and explicit nothing loads it unasked;
under poll Triton loads it at its next look, so the client waits that long (plus a margin) and then says so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving import client as client_module
from serving.client import TritonGrpcClient
from serving.deploy import deploy
from serving.server import TritonServer
from serving.server_mode import POLL_MARGIN_S, ListeningServer, listening_tritonserver

HAS_TRITON = shutil.which("tritonserver") is not None or importlib.util.find_spec("pytriton") is not None
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="no tritonserver: none on PATH, no nvidia-pytriton wheel")


@pytest.mark.parametrize(
    ("argv", "control", "poll_s", "http_port"),
    [
        (["tritonserver", "--model-repository=/r"], "none", 15.0, 8000),  # Triton's defaults
        (["/bin/tritonserver", "--model-control-mode=explicit", "--http-port=9000"], "explicit", 15.0, 9000),
        (["tritonserver", "--model-control-mode", "poll", "--repository-poll-secs", "3"], "poll", 3.0, 8000),
        (["tritonserver", "--model-control-mode=poll", "--repository-poll-secs=2.5"], "poll", 2.5, 8000),
        (["tritonserver", "--model-control-mode=none", "--model-control-mode=explicit"], "explicit", 15.0, 8000),
    ],
)
def test_the_mode_is_read_from_either_form_of_the_command_line(
    argv: list[str], control: str, poll_s: float, http_port: int
) -> None:
    assert ListeningServer.from_argv(42, argv) == ListeningServer(42, control, poll_s, http_port)


def test_another_program_on_the_port_or_no_listener_is_not_known(free_port_factory: Callable[[], int]) -> None:
    assert ListeningServer.from_argv(42, ["python", "--model-control-mode=explicit"]) is None
    assert ListeningServer.from_argv(42, []) is None
    assert listening_tritonserver(f"127.0.0.1:{free_port_factory()}") is None  # nothing listens
    assert listening_tritonserver("203.0.113.9:8001") is None  # another machine's: its process cannot be read


def test_under_poll_the_client_waits_a_poll_and_a_margin_then_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "127.0.0.1:19659"  # nothing listens: the server is stood in for
    server = ListeningServer(4242, "poll", 2.0, 8000)
    monkeypatch.setattr(client_module, "listening_tritonserver", lambda _url: server)
    index = [{"name": "b"}]
    with TritonGrpcClient(url, timeout_s=1) as client:
        assert client._not_served("b", index) == (None, True), "its next poll loads it"
        assert client._not_served("b", index, waited_s=2.0 + POLL_MARGIN_S - 0.1) == (None, True)
        why, coming = client._not_served("b", index, waited_s=2.0 + POLL_MARGIN_S + 0.1)
    assert not coming
    assert why == (
        f"{url}: model 'b' is in the repository but not loaded after {2.0 + POLL_MARGIN_S + 0.1:.0f} s: tritonserver "
        "(pid 4242) runs with --model-control-mode=poll and looks every 2 s, yet did not load it: it refused the "
        "folder before loading it (its log names why: a config.pbtxt it cannot read, or one named unlike its folder; "
        "log: tritonserver's stderr, where pid 4242 was started (no --log-file; not a file))"  # session 60
    )


@needs_triton
@pytest.mark.e2e
@pytest.mark.parametrize("control", ["explicit", "none"])
def test_a_model_a_plain_server_will_not_load_is_said_at_once_with_its_mode(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer], control: str
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "a")
    if control == "explicit":
        deploy(dense_build, repo, "b")  # in the repository, never asked for
        server = triton_server_factory(repo, model_control="explicit", load_models=("a",))
    else:
        server = triton_server_factory(repo, model_control="none")
        deploy(dense_build, repo, "b")  # added after the start: none loads the repository only then
    assert server.pid is not None
    url = server.grpc_url
    with TritonGrpcClient(url, timeout_s=5) as client:
        client.wait_model_ready("a", timeout_s=30)
        assert {m["name"]: m.get("state") for m in client.repository_index()} == {"a": "READY", "b": None}
        with pytest.raises(QuantserveError) as refused:
            client.wait_model_ready("b", timeout_s=30)
    said = str(refused.value)
    assert "not ready after" not in said, "it waited its whole timeout"
    assert said.startswith(
        f"{url}: model 'b' is in the repository but not loaded: tritonserver (pid {server.pid}) runs with "
        f"--model-control-mode={control}"
    )
    http = f"{server.options.host}:{server.ports['http']}"
    if control == "explicit":
        assert f"POST http://{http}/v2/repository/models/b/load" in said and "--load-model=b" in said
    else:
        assert "loads the repository only at its start; restart it" in said
    assert os.path.exists(repo / "b")
