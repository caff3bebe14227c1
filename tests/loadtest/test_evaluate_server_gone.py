"""A server that goes away during `evaluate` is said to have stopped, not blamed on a deploy.

Probed: SIGTERM to `serve` 10 s into `evaluate --batch-size 1` exited 2 with "model 'slow' version 3 stopped being
served during the run (a deploy or rollback meanwhile?)": nothing was deployed. The model's readiness reads False
on a connection error too, so the run now asks whether the server is live first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import loadtest_models as models
import pytest

from quantserve.cli import main
from serving.server import TritonServer

pytestmark = pytest.mark.e2e  # not serial: it waits on the held batch, not on a time

ANSWERED = 2  # batches the model answers; it holds the next one until the server is killed


def _answer_then_hold(model_py: Path, marker: Path) -> None:
    """The test MLP's Python backend answering ANSWERED batches, then holding the next (the marker says it holds)."""
    head = "    def execute(self, requests: list[Any]) -> list[Any]:\n"
    assert head in model_py.read_text()
    hold = (
        "        self.calls = getattr(self, 'calls', 0) + 1\n"
        f"        if self.calls > {ANSWERED}:\n"
        f"            import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(600)\n"
    )
    model_py.write_text(model_py.read_text().replace(head, head + hold))


def _kill_when_held(server: TritonServer, marker: Path) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 300  # a cap only: the test waits on the marker, not on a time
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        server.stop(kill=True)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_server_killed_mid_evaluate_is_said_stopped_not_a_deploy(
    tmp_path: Path, triton_server_factory: Callable[..., TritonServer], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, data = models.own_mlp_repo(tmp_path, ("mlp",), 8)  # 64 rows: 16 batches of 4
    marker = tmp_path / "holding"
    _answer_then_hold(repo / "mlp" / "1" / "model.py", marker)
    server = triton_server_factory(repo)
    url = server.grpc_url
    killer = _kill_when_held(server, marker)
    argv = ["evaluate", "--url", url, "--models", "mlp", "--reference", "mlp", "--data", str(data)]
    status = main([*argv, "--batch-size", "4", "--request-timeout", "15", "--out", str(tmp_path / "out")])
    killer.join(timeout=60)
    assert marker.exists(), "the model never held a batch"
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.strip() == (
        f"quantserve: error: the server at {url} stopped answering during the run (after {ANSWERED} of 16 batches of "
        "model 'mlp'); no figure of this run counts: start it again and run evaluate again"
    )
    assert not (tmp_path / "out" / "accuracy.json").exists()
