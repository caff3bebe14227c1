"""A model `serve --allow-failed-models` left out is named with serve's reason by every client, at once.

Measured (session 58): a hand-written config.pbtxt whose input was TYPE_FP32 while model.onnx took int64 was refused
by serve's own check, named at start with its reason, and never handed to Triton, whose index then listed it with no
state and no reason: `infer` and `evaluate` waited 30 s, then said "model 'hand' not ready after 30 s", and
`loadtest` said only "is not ready … (ready: …)". serve now keeps the models it leaves out, with its reasons, in its
endpoint record (rewritten as they change), and the clients read it where Triton gives no state; they wait only where
a load may still come (a model loading, or one whose folder changed after serve last judged it).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_supervisor import Serve, serve_command

from loadtest.load_pattern import ClosedLoop
from loadtest.load_settings import LoadSettings
from loadtest.step_checks import check_model_ready
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.client import TritonGrpcClient
from serving.control import ControlClient
from serving.deploy import deploy
from serving.endpoints import ServedEndpoints, find_endpoints, write_record
from serving.server import ServerOptions
from serving.supervisor import Supervisor

MISMATCH = "has a config.pbtxt that does not match version 1's model.onnx: input 'x' has dims [9] in the config"


def break_config(model_dir: Path, fixed: bool = False) -> None:
    config = model_dir / "config.pbtxt"
    old, new = ("dims: 9", "dims: 8") if fixed else ("dims: 8", "dims: 9")
    config.write_text(config.read_text().replace(old, new, 1))


class NothingServed(ControlClient):
    """A server that serves no version of any model and loads what it is asked to."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1")
        self.loads = 0

    def ready_versions(self, model: str) -> list[int]:
        return [1] if self.loads else []

    def load(self, model: str) -> None:
        self.loads += 1


def test_a_load_serve_refuses_is_kept_with_its_reason_and_dropped_once_it_loads(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    break_config(repo / "dense")
    told: list[dict[str, str]] = []
    supervisor = Supervisor(ServerOptions.on_free_ports(repo, model_control="explicit"), log=lambda _line: None)
    supervisor.on_refused = told.append
    control = NothingServed()
    supervisor._load("dense", control, None)
    assert control.loads == 0 and list(supervisor.refused) == ["dense"]
    assert supervisor.refused["dense"].startswith(f"not loaded: {repo / 'dense'} {MISMATCH}")
    assert told == [supervisor.refused]
    break_config(repo / "dense", fixed=True)  # loaded, so no longer left out
    supervisor._load("dense", control, None)
    assert control.loads == 1 and supervisor.refused == {} and told[-1] == {}


def _recorded(repo: Path, grpc_port: int, refused: dict[str, str], control: str = "explicit") -> Path:
    return write_record(ServedEndpoints(os.getpid(), str(repo), "127.0.0.1", grpc_port, 1, 2, control, refused))


def test_a_client_names_serves_reason_and_waits_only_where_a_load_may_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its made-up serve records (HTTP port 1) in a runtime folder of its own: left in the session's, a later test's
    # --metrics-url 127.0.0.1:1 was read as this record's HTTP port
    monkeypatch.setenv("QUANTSERVE_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "hand" / "1").mkdir(parents=True)
    (tmp_path / "late").mkdir()
    old = time.time() - 60
    for folder in (tmp_path / "hand", tmp_path / "hand" / "1", tmp_path / "late"):
        os.utime(folder, (old, old))
    url = "127.0.0.1:19631"
    index = [{"name": "hand"}, {"name": "late"}, {"name": "m", "state": "LOADING"}]
    index.append({"name": "gpu", "state": "UNAVAILABLE", "reason": "no GPU\nmore"})
    with TritonGrpcClient(url, timeout_s=1) as client:
        assert client._not_served("hand", index) == (None, False), "no serve recorded: who loads it is not known"
        record = _recorded(tmp_path, 19631, {"hand": f"{tmp_path / 'hand'} {MISMATCH}"})
        endpoints = find_endpoints(url)
        assert endpoints is not None and endpoints.refused == {"hand": f"{tmp_path / 'hand'} {MISMATCH}"}
        why = f"{url}: model 'hand' is not served: quantserve serve (pid {os.getpid()}) left it out: "
        assert client._not_served("hand", index) == (why + f"{tmp_path / 'hand'} {MISMATCH}", False)
        assert client._not_served("late", index) == (None, True), "deployed after serve's last look: it loads it"
        assert client._not_served("m", index) == (None, True)
        assert client._not_served("gpu", index) == (f"{url}: model 'gpu' is unavailable: no GPU", False)
        os.utime(record, (old - 10, old - 10))
        (tmp_path / "hand" / "config.pbtxt").write_text("fixed")  # after serve judged it: it looks again
        assert client._not_served("hand", index) == (None, True)
        _recorded(tmp_path, 19631, {}, control="none")
        assert "runs with --model-control none" in str(client._not_served("late", index)[0])


@pytest.mark.e2e
def test_infer_and_loadtest_name_serves_reason_at_once(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, ports = tmp_path / "repo", [str(free_port_factory()) for _ in range(3)]
    command = serve_command(dense_build, tmp_path, ports, "--allow-failed-models")
    deploy(dense_build, repo, "hand", max_batch=8)
    break_config(repo / "hand")
    staged = tmp_path / "staged"
    deploy(dense_build, staged, "late", max_batch=8)
    break_config(staged / "late")
    url, data = f"127.0.0.1:{ports[0]}", tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 8), np.float32))
    serve = Serve([*command, "--log-file", str(tmp_path / "triton.log")])
    try:
        serve.wait_for("press Ctrl-C", timeout_s=120)
        capsys.readouterr()
        assert main(["infer", "--url", url, "--model", "hand", "--data", str(data)]) == 2
        said = capsys.readouterr().err
        assert f"model 'hand' is not served: quantserve serve (pid {serve.process.pid}) left it out: " in said
        assert f"{repo / 'hand'} {MISMATCH}" in said
        with pytest.raises(QuantserveError, match=f"model 'hand' is not served: .*{re.escape(MISMATCH)}"):
            check_model_ready(LoadSettings(url, "hand", data, ClosedLoop(1), 1.0))
        shutil.move(staged / "late", repo / "late")  # added live, refused by serve's watcher
        serve.wait_for("model 'late' not loaded", timeout_s=30)
        assert main(["infer", "--url", url, "--model", "late", "--data", str(data)]) == 2
        assert f"model 'late' is not served: quantserve serve (pid {serve.process.pid}) left it out: not loaded" in (
            capsys.readouterr().err
        )
        break_config(repo / "hand", fixed=True)  # loaded, and served to a client asking before serve saw it
        assert main(["infer", "--url", url, "--model", "hand", "--data", str(data)]) == 0
    finally:
        serve.stop()
