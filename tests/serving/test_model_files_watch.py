"""A served model's files moved away or replaced in place under `quantserve serve` are noticed and said in one line
(issue 11): the watch looked at config.pbtxt and the version folders' names only. Explicit model control reloads the
model (Triton keeps the loaded version serving when the reload fails); poll model control names each reload Triton
fails by itself once, not at every 15 s retry; a restart that cannot load a model no longer says "ready again" while
/v2/health/ready is false."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_broken_model_folders import wait_for_line

from serving.deploy import deploy
from serving.model_files import files_changed, model_fingerprints
from serving.model_states import restarted_line
from serving.poll_loads import PollLoadWatch
from serving.restarts import RestartPolicy
from serving.server import ServerOptions
from serving.supervisor import Supervisor

# Triton 2.51's own lines (tritonserver log, poll model control, model.onnx moved away, then back)
FAILED = (
    "E1201 04:27:53.437848 12952 model_lifecycle.cc:642] \"failed to load 'mlp' version 1: Internal: NoSuchFile: "
    "[ONNXRuntimeError] : 3 : NO_SUCHFILE : Load model from /r/mlp/1/model.onnx failed. File doesn't exist\\n\\nAt:\\n"
    '  onnxruntime_inference_collection.py(753): _create_inference_session"\n'
    "I1201 04:27:53.437905 12952 model_lifecycle.cc:777] \"failed to load 'mlp'\"\n"
)
LOADED = "I1201 04:29:06.364844 12952 model_lifecycle.cc:839] \"successfully loaded 'mlp'\"\n"


def test_a_version_file_removed_or_replaced_changes_the_fingerprint_and_pycache_does_not(
    dense_build: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    before = model_fingerprints(repo)["dense"]
    (repo / "dense" / "1" / "__pycache__").mkdir(exist_ok=True)  # the Python backend's stub writes it at each load
    (repo / "dense" / "1" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"x")
    assert model_fingerprints(repo)["dense"] == before
    model = repo / "dense" / "1" / "model.onnx"
    model.rename(tmp_path / "away.onnx")
    gone = model_fingerprints(repo)["dense"]
    assert files_changed(before, gone) == "version 1's files changed on disk (model.onnx removed)"
    model.write_bytes(b"truncated")
    size = (tmp_path / "away.onnx").stat().st_size
    replaced = f"version 1's files changed on disk (model.onnx replaced, {size} → 9 bytes)"
    assert files_changed(before, model_fingerprints(repo)["dense"]) == replaced
    assert files_changed(None, gone) == ""  # a new model folder is a deploy, said as such


def test_poll_mode_names_each_failed_reload_once_until_it_loads(tmp_path: Path) -> None:
    log = tmp_path / "triton.log"
    log.write_text("I1201 startup lines a start names itself\n" + FAILED)
    watch = PollLoadWatch()
    watch.begin(log)
    assert watch.news() == []
    with open(log, "a") as out:
        out.write(FAILED)
    first = watch.news()
    assert [(n.model, n.version) for n in first] == [("mlp", "1")]
    assert first[0].reason is not None and first[0].reason.endswith("/r/mlp/1/model.onnx failed. File doesn't exist")
    with open(log, "a") as out:
        out.write(FAILED + FAILED[:40])  # Triton's retries 15 s apart, and a line half written
    assert watch.news() == []
    with open(log, "a") as out:
        out.write(FAILED[40:] + LOADED)
    loaded = watch.news()
    assert [(n.model, n.reason) for n in loaded] == [("mlp", None)]


def test_a_restart_that_leaves_a_model_out_is_not_called_ready() -> None:
    down = {"dense": "NoSuchFile: model.onnx"}
    line = restarted_line(42, 3.3, False, down)
    assert "ready again" not in line
    assert line.startswith(
        "tritonserver back (pid 42) 3.3 s after restart but not ready (/v2/health/ready false while "
    )
    assert "model 'dense' is not served, named above" in line and "--allow-failed-models" in line
    assert restarted_line(42, 3.3, True, {}) == "tritonserver ready again (pid 42) 3.3 s after restart"
    lenient = restarted_line(42, 3.3, True, down)
    assert lenient.endswith("ready again (pid 42) 3.3 s after restart; model 'dense' is not served (named above)")


@pytest.fixture
def supervised(
    dense_build: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Supervisor, list[str]]]:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    deploy(dense_build, repo, "other", max_batch=8)
    mode = request.param
    options = ServerOptions.on_free_ports(
        repo,
        model_control=mode,
        load_models=("*",) if mode == "explicit" else (),
        log_path=tmp_path / "triton.log",
        stop_timeout_s=3,  # a model whose reload failed under poll control held Triton's own stop for its 30 s
    )
    lines: list[str] = []
    supervisor = Supervisor(options, RestartPolicy(max_restarts=1), poll_s=0.2, log=lines.append)
    supervisor.start()
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    watcher.start()
    try:
        yield supervisor, lines
    finally:
        supervisor.stop()
        watcher.join(timeout=30)


@pytest.mark.e2e
@pytest.mark.parametrize("supervised", ["explicit"], indirect=True)
def test_explicit_mode_says_a_moved_model_file_keeps_its_loaded_version_and_a_restart_is_not_ready(
    supervised: tuple[Supervisor, list[str]], tmp_path: Path
) -> None:
    supervisor, lines = supervised
    control = supervisor.server.control()
    (supervisor.options.repo / "dense" / "1" / "model.onnx").rename(tmp_path / "away.onnx")
    line = wait_for_line(lines, "model 'dense'", timeout_s=60)
    assert line.startswith(
        "model 'dense' version 1's files changed on disk (model.onnx removed): reload failed, versions [1] keep "
        "serving what was loaded before the change"
    ), line
    assert "NO_SUCHFILE" in line and control.ready_versions("dense") == [1] and control.is_ready()
    os.kill(supervisor.server.pid or 0, 9)
    back = wait_for_line(lines, "after restart", "restart failed", timeout_s=60)
    assert back.startswith("tritonserver back (pid ") and "model 'dense' is not served" in back, lines
    assert not any("ready again" in said for said in lines), lines
    assert not control.is_ready() and control.ready_versions("other") == [1]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("supervised", ["poll"], indirect=True)
def test_poll_mode_names_the_reload_triton_failed(supervised: tuple[Supervisor, list[str]], tmp_path: Path) -> None:
    supervisor, lines = supervised
    started = time.monotonic()
    (supervisor.options.repo / "dense" / "1" / "model.onnx").rename(tmp_path / "away.onnx")
    line = wait_for_line(lines, "model 'dense'", timeout_s=60)  # Triton polls the repository every 15 s
    print(f"\npoll mode: the failed reload named {time.monotonic() - started:.1f} s after the file moved")
    assert line.startswith("model 'dense' version 1 failed to reload (") and "NO_SUCHFILE" in line, line
    assert "versions [1] keep serving the files loaded before" in line
