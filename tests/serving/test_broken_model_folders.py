"""A model folder Triton cannot serve — no config.pbtxt (a version copied in by hand), a config it cannot parse, a
model that fails to load — is named in one line at the first start, and never takes the healthy models down on
a restart: they serve, and each broken one is named in a warning line."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_deploy_checks import serve_args

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.model_states import models_not_loaded, not_loaded_line
from serving.repository import prepare_repository
from serving.restarts import RestartPolicy
from serving.server import ServerOptions, TritonServer
from serving.supervisor import Supervisor

BAD_CONFIG = 'name: "bad"\nnonsense_field: 3\n'
PARSE_ERROR = 'not a readable Triton config (2:1 : Message type "inference.ModelConfig" has no field named'


def copy_version_by_hand(repo: Path, name: str) -> None:
    shutil.copytree(repo / "dense" / "1", repo / name / "1")


def test_serve_refuses_a_model_folder_without_config_in_one_line(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    """Triton would guess a config from model.onnx and fail with "unable to find backend library for backend
    'onnxruntime'", a line that names neither the folder nor the cause."""
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    copy_version_by_hand(repo, "n")
    assert main(serve_args(repo, free_port_factory)) == 2
    err = capsys.readouterr().err
    assert err == f"quantserve: error: {repo / 'n'}: model 'n' has no config.pbtxt; deploy it or remove the folder\n"
    assert (repo / "n" / "1" / "model.onnx").is_file()  # nothing of it removed


def test_every_unservable_folder_is_named_and_a_restart_gets_them_to_skip(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    copy_version_by_hand(repo, "n")
    (repo / "empty_config").mkdir()
    shutil.copy(repo / "dense" / "config.pbtxt", repo / "empty_config")
    with pytest.raises(QuantserveError) as refused:
        prepare_repository(repo)
    reasons = "model 'empty_config' has no version folder, model 'n' has no config.pbtxt"
    assert str(refused.value) == f"{repo}: {reasons}; deploy them or remove the folders"
    assert prepare_repository(repo, strict=False) == {
        "empty_config": "has no version folder",
        "n": "has no config.pbtxt",
    }


def test_models_triton_did_not_load_are_each_named_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.pbtxt").write_text(BAD_CONFIG)
    index = [
        {"name": "bad"},  # how Triton lists a config it cannot parse
        {"name": "broken", "version": "1", "state": "UNAVAILABLE", "reason": "RuntimeError: corrupt\nTraceback …"},
        {"name": "dense", "version": "1", "state": "READY"},
        {"name": "later"},  # not asked for
    ]
    failed = models_not_loaded(index, tmp_path, ("bad", "broken", "dense"), "")
    assert list(failed) == ["bad", "broken"] and failed["broken"] == "RuntimeError: corrupt"
    assert failed["bad"].startswith(f"{tmp_path / 'bad' / 'config.pbtxt'}: {PARSE_ERROR}")
    line = not_loaded_line(failed, tmp_path / "log")
    assert line.startswith("2 models failed to load: 'bad': ") and "; 'broken': RuntimeError: corrupt (log: " in line
    assert models_not_loaded(index, tmp_path, None, "").keys() == {"bad", "broken", "later"}


@pytest.mark.e2e
def test_a_config_triton_cannot_parse_is_named_at_start(
    dense_build: Path, tmp_path: Path, triton_server_factory: Callable[..., TritonServer]
) -> None:
    """Triton lists such a model with no state and no reason, and is ready without it: it was skipped unnamed."""
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "bad")
    (repo / "bad" / "config.pbtxt").write_text(BAD_CONFIG)
    server = triton_server_factory(repo, start=False, model_control="explicit", load_models=("*",))
    with pytest.raises(QuantserveError) as refused:
        server.start()
    assert str(refused.value).startswith(f"model 'bad' failed to load: {repo / 'bad' / 'config.pbtxt'}: {PARSE_ERROR}")
    assert not server.is_running()


def wait_for_line(lines: list[str], *texts: str, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in list(lines):
            if any(text in line for text in texts):
                return line
        time.sleep(0.1)
    raise AssertionError(f"none of {texts} within {timeout_s:.0f} s: {lines}")


@pytest.mark.e2e
def test_a_restart_serves_the_healthy_model_and_names_each_broken_one(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    options = ServerOptions.on_free_ports(
        repo, model_control="explicit", load_models=("*",), log_path=tmp_path / "triton.log", startup_timeout_s=60
    )
    lines: list[str] = []
    supervisor = Supervisor(options, RestartPolicy(max_restarts=1), poll_s=0.2, log=lines.append)
    supervisor.start()
    watcher = threading.Thread(target=supervisor.run, daemon=True)
    try:
        copy_version_by_hand(repo, "n")  # appear while it serves (the watcher never loads a folder with no config)
        deploy(dense_build, repo, "bad")
        (repo / "bad" / "config.pbtxt").write_text(BAD_CONFIG)
        deploy(dense_build, repo, "broken")
        (repo / "broken" / "1" / "model.py").write_text("raise RuntimeError('weights are corrupt')\n")
        supervisor.server._process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        while supervisor.server.is_running():
            time.sleep(0.05)
        watcher.start()
        # the restart cannot load 'broken': strict readiness stays false, and serve says so ("ready again" lied)
        assert "but not ready" in wait_for_line(lines, "after restart", "restart failed"), lines
        assert supervisor.server.loaded_models() == {"dense": ["1"]}
        warnings = sorted(line for line in lines if line.startswith("warning: "))
        assert len(warnings) == 3, lines
        bad_config = repo / "bad" / "config.pbtxt"
        assert warnings[0].startswith(f"warning: model 'bad' not loaded: {bad_config}: {PARSE_ERROR}")
        assert warnings[1].startswith("warning: model 'broken' not loaded: ") and "weights are corrupt" in warnings[1]
        assert warnings[2] == f"warning: model 'n' not loaded: {repo / 'n'} has no config.pbtxt; the other models serve"
    finally:
        supervisor.stop()
        watcher.join(timeout=30)
