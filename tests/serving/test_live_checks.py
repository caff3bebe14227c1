"""Against a real tritonserver: a deploy --url the server cannot load is taken out of the repository again, a
rollback --url counts down from the version the server serves and claims only a confirmed load, serve starts
past a killed first deploy's leftovers, and a SIGKILLed serve takes its tritonserver with it."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from test_deploy_checks import dead_pid
from test_supervisor import Serve, serve_command

import optimizer.embedded
from quantserve.cli import main
from serving.deploy import deploy
from serving.repository import STAGING_PREFIX
from serving.repository_lock import VERSION_RECORD
from serving.server import ServerOptions, TritonServer
from serving.supervisor import Supervisor
from serving.versions import existing_versions

pytestmark = pytest.mark.e2e


def files_of(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def explicit_server(repo: Path, triton_server_factory: Callable[..., TritonServer]) -> TritonServer:
    return triton_server_factory(repo, model_control="explicit", load_models=("*",))


def test_deploy_url_that_fails_to_load_is_removed_again(
    dense_build: Path,
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=4)
    server = explicit_server(repo, triton_server_factory)
    before = files_of(repo)
    broken = tmp_path / "model.py"
    broken.write_text("raise RuntimeError('weights are corrupt')\n")
    monkeypatch.setattr(optimizer.embedded, "python_backend_model", lambda: broken)
    command = ["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "8"]
    assert main([*command, "--keep-versions", "1", "--url", server.control_url]) == 2
    captured = capsys.readouterr()
    assert "deployed" not in captured.out, captured.out
    assert captured.err.startswith("quantserve: error: ") and captured.err.count("\n") == 1, captured.err
    assert f"version 2 removed again, {repo / 'dense'} is as before" in captured.err, captured.err
    record = Path("dense") / VERSION_RECORD  # the one change: number 2 was issued, and is never issued again
    after = files_of(repo)
    assert (before.pop(record), after.pop(record)) == (b"1\n", b"2\n")
    assert after == before  # version 1 kept (not pruned), the old config back
    assert server.control().ready_versions("dense") == [1]
    monkeypatch.undo()  # a good build again: it goes live as version 3, not as a second version 2
    assert main([*command, "--url", server.control_url]) == 0
    assert "deployed" in capsys.readouterr().out
    assert server.control().ready_versions("dense") == [3]


def test_rollback_url_starts_from_the_served_version_and_waits_for_the_load(
    dense_build: Path,
    tmp_path: Path,
    triton_server_factory: Callable[..., TritonServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    deploy(dense_build, repo, "dense", max_batch=8)
    server = explicit_server(repo, triton_server_factory)
    control = server.control()
    assert control.ready_versions("dense") == [2]
    shutil.copytree(repo / "dense" / "2", repo / "dense" / "3")  # on disk, never loaded: the server serves 2
    capsys.readouterr()
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--url", server.control_url]) == 0
    assert "'dense' now serves version 1" in capsys.readouterr().out
    assert control.ready_versions("dense") == [1]
    (repo / "dense" / "3" / "model.py").write_text("raise RuntimeError('weights are corrupt')\n")
    config = (repo / "dense" / "config.pbtxt").read_bytes()
    assert main(["rollback", "--repo", str(repo), "--name", "dense", "--to", "3", "--url", server.control_url]) == 2
    captured = capsys.readouterr()
    assert "now serves" not in captured.out and "put back, the server keeps what it served" in captured.err
    assert (repo / "dense" / "config.pbtxt").read_bytes() == config
    assert control.ready_versions("dense") == [1]


def test_supervised_start_clears_a_killed_first_deploy(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense", max_batch=8)
    (repo / "newcnn" / f"{STAGING_PREFIX}{dead_pid()}-1").mkdir(parents=True)
    options = ServerOptions.on_free_ports(
        repo, model_control="explicit", load_models=("*",), log_path=tmp_path / "triton.log", startup_timeout_s=60
    )
    supervisor = Supervisor(options, log=lambda line: None)
    try:
        supervisor.start()
        assert supervisor.server.loaded_models() == {"dense": ["1"]}
    finally:
        supervisor.stop()
    assert sorted(p.name for p in repo.iterdir()) == ["dense"] and existing_versions(repo / "dense") == [1]


def test_tritonserver_dies_with_a_killed_serve(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    ports = [str(free_port_factory()) for _ in range(3)]
    serve = Serve(serve_command(dense_build, tmp_path, ports, "--log-file", str(tmp_path / "triton.log")))
    family: list[psutil.Process] = []
    try:
        serve.wait_for("press Ctrl-C", timeout_s=60)
        triton = serve.tritonserver()
        family += [triton, *triton.children(recursive=True)]  # the Python backend stub too
        serve.process.send_signal(signal.SIGKILL)
        serve.process.wait(timeout=10)
        _gone, alive = psutil.wait_procs(family, timeout=25)
        assert not alive, f"outlived serve: {[(p.pid, p.name()) for p in alive]}"
    finally:
        serve.stop()
        for process in family:
            if process.is_running():
                process.kill()  # what outlived serve must not outlive the test
