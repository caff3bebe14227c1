"""Models that load slowly (a long `initialize`) or not at all, beside healthy ones, on a real tritonserver.

A start that times out names the model still loading and the option that gives it longer (before: "not ready
after 20 s", naming nothing); a slow live load holds up no other model's (before: an unrelated deploy went live
only after the slow model's 40 s load); a brand-new model that fails to load is said to be not served (before:
"reload failed, previous versions keep serving", of a model that had none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving_models import make_build_dir

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.model_states import not_ready_line
from serving.server import ServerOptions, TritonServer
from serving.supervisor import Supervisor

pytestmark = pytest.mark.e2e

SLOW_S = 12  # a slow initialize: long against a quick model's load (~2 s), short for the suite

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
input [{{ name: "x" data_type: TYPE_FP32 dims: [ 1 ] }}]
output [{{ name: "y" data_type: TYPE_FP32 dims: [ 1 ] }}]
instance_group [{{ kind: KIND_CPU count: 1 }}]
"""
MODEL_PY = """import time


class TritonPythonModel:
    def initialize(self, args):
        {init}

    def execute(self, requests):
        return []
"""


def python_model(repo: Path, name: str, init: str = "pass") -> None:
    """A tiny Python backend model whose `initialize` runs `init`, moved into `repo` whole, as deploy does."""
    staged = repo.parent / f"staged-{name}"
    (staged / "1").mkdir(parents=True)
    (staged / "config.pbtxt").write_text(CONFIG.format(name=name))
    (staged / "1" / "model.py").write_text(MODEL_PY.format(init=init))
    staged.rename(repo / name)


def deployed_repo(parent: Path) -> Path:
    repo = parent / "repo"
    build = make_build_dir(parent / "build")
    assert main(["deploy", str(build), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]) == 0
    return repo


def test_a_start_that_times_out_names_the_model_still_loading(tmp_path: Path) -> None:
    repo = deployed_repo(tmp_path)
    python_model(repo, "slowinit", "time.sleep(60)")
    log = tmp_path / "triton.log"
    server = TritonServer(ServerOptions.on_free_ports(repo, startup_timeout_s=8, stop_timeout_s=3, log_path=log))
    with pytest.raises(QuantserveError) as refused:
        server.start()
    assert str(refused.value).splitlines()[0] == (
        "tritonserver not ready after 8 s: model 'slowinit' was still loading (a slow initialize?); "
        f"give it longer with --startup-timeout (log: {log})"
    )
    assert not server.is_running()


def test_the_log_names_each_model_whose_load_began_and_did_not_end(tmp_path: Path) -> None:
    log = tmp_path / "triton.log"
    log.write_text(
        'I1130 model_lifecycle.cc:472] "loading: a:1"\nI1130 model_lifecycle.cc:472] "loading: b.2:1"\n'
        'I1130 model_lifecycle.cc:472] "loading: c:1"\nI1130 model_lifecycle.cc:472] "loading: a:2"\n'
        "I1130 model_lifecycle.cc:839] \"successfully loaded 'a'\"\n"
        "E1130 model_lifecycle.cc:654] \"failed to load 'c' version 1: Internal: boom\"\n"
        'I1130 model_lifecycle.cc:472] "loading: d_3:1"\n'
    )
    assert not_ready_line(20, log) == (
        "tritonserver not ready after 20 s: models 'b.2', 'd_3' were still loading (a slow initialize?); "
        f"give it longer with --startup-timeout (log: {log})"
    )
    assert (
        not_ready_line(20, tmp_path / "none.log") == f"tritonserver not ready after 20 s (log: {tmp_path / 'none.log'})"
    )


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Supervisor, list[str]]]:
    parent = tmp_path_factory.mktemp("slow-loads")
    options = ServerOptions.on_free_ports(
        deployed_repo(parent), model_control="explicit", load_models=("*",), log_path=parent / "triton.log"
    )
    lines: list[str] = []
    supervisor = Supervisor(options, poll_s=0.2, log=lines.append)
    supervisor.start()
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    watcher.start()
    try:
        yield supervisor, lines
    finally:
        supervisor.stop()
        watcher.join(timeout=30)


def line_about(lines: list[str], model: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [line for line in list(lines) if f"model '{model}'" in line]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"nothing said of model '{model}' within {timeout_s:.0f} s: {lines}")


def test_a_slow_live_load_holds_up_no_other_model(supervised: tuple[Supervisor, list[str]]) -> None:
    supervisor, lines = supervised
    control = supervisor.server.control()
    python_model(supervisor.options.repo, "slowinit", f"time.sleep({SLOW_S})")
    time.sleep(1.5)  # the watcher has begun loading it
    began = time.monotonic()
    python_model(supervisor.options.repo, "quick")
    assert line_about(lines, "quick", SLOW_S - 3) == "model 'quick' loaded: versions [1] live"  # new here
    took = time.monotonic() - began
    assert control.ready_versions("slowinit") == [], f"quick went live after {took:.1f} s, once slowinit had loaded"
    assert line_about(lines, "slowinit", SLOW_S + 30) == "model 'slowinit' loaded: versions [1] live"


def test_a_new_model_that_fails_to_load_is_said_not_served(supervised: tuple[Supervisor, list[str]]) -> None:
    supervisor, lines = supervised
    python_model(supervisor.options.repo, "broken", "raise RuntimeError('boom at init')")
    line = line_about(lines, "broken", 60)
    assert line.startswith("model 'broken' failed to load, not served: ") and "boom at init" in line, line
    assert supervisor.server.control().ready_versions("dense") == [1]
