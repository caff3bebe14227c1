"""A repository path the Python backend's stub cannot start from (a space, a non-ASCII letter, shell characters) is
deployed to as any other, and `serve` hands tritonserver a plainly named link to it, removed when the server stops.

Both were refused: `deploy` before writing, `serve` before starting (a space had hung `serve` for its whole startup
timeout, `repo_ü` failed the load with a UnicodeEncodeError); `quantserve serve --repo "/home/me/My Models"` is what
a user types.
"""

from __future__ import annotations

import os
import queue
import signal
import string
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from serving_models import wait_for_line

from optimizer.onnxruntime_runner import OnnxRuntimeRunner
from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving import stub_path
from serving.deploy import deploy
from serving.server import ServerOptions, TritonServer
from serving.stub_path import LINK_PREFIX, link_for_stub, stub_path_problem
from serving.supervisor import Supervisor
from serving.triton_install import TritonInstall
from serving.triton_runner import TritonRunner

SPACE = "a space (' '), which splits the path where Triton starts the model's stub (a shell, path unquoted)"
FEEDS = {"x": np.random.default_rng(5).normal(size=(3, 8)).astype(np.float32)}


def _answers_as_onnxruntime(grpc_url: str, build: Path) -> None:
    with TritonRunner(grpc_url, "dense") as served, OnnxRuntimeRunner(build / "model.onnx") as local:
        got, want = served.infer(FEEDS), local.infer(FEEDS)
    np.testing.assert_allclose(got["probs"], want["probs"], rtol=1e-5, atol=1e-6)
    assert np.array_equal(got["label"], want["label"])


@pytest.mark.parametrize("char", [" ", "ü"])
def test_deploy_writes_the_embedded_model_to_the_path(dense_build: Path, tmp_path: Path, char: str) -> None:
    repo = tmp_path / f"My Models{char}"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 0
    assert (repo / "dense" / "1" / "model.onnx").is_file() and (repo / "dense" / "1" / "model.py").is_file()


def _serve(repo: Path, ports: list[str], run_dir: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    command = [sys.executable, "-m", "quantserve", "serve", "--repo", str(repo), "--grpc-port", ports[0]]
    command += ["--http-port", ports[1], "--metrics-port", ports[2], "--log-file", str(run_dir / "triton.log")]
    env = {**os.environ, "QUANTSERVE_RUNTIME_DIR": str(run_dir)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return process, lines


@pytest.mark.e2e
def test_serve_answers_from_a_path_with_a_space_through_a_link(
    dense_build: Path, tmp_path: Path, free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "My Models"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense", "--max-batch", "4"]) == 0
    ports = [str(free_port_factory()) for _ in range(3)]
    process, lines = _serve(repo, ports, tmp_path)
    try:
        seen: list[str] = []
        wait_for_line(lines, "press Ctrl-C to stop", seen)
        (said,) = [line for line in seen if "served through" in line]
        link = Path(said.split(" served through ")[1].split(" → ")[0])
        assert said == f"model repository path has {SPACE}: served through {link} → {repo}"
        assert stub_path_problem(link) is None and link.name == "repo" and link.parent.name.startswith(LINK_PREFIX)
        assert link.is_symlink() and link.resolve() == repo
        assert "tritonserver ready (pid " in seen[seen.index(said) + 1] and seen[-1] == "press Ctrl-C to stop"
        _answers_as_onnxruntime(f"127.0.0.1:{ports[0]}", dense_build)
        process.send_signal(signal.SIGTERM)
        wait_for_line(lines, "stopped", seen, timeout_s=60)
        assert process.wait(timeout=60) == 0
        assert not link.parent.exists(), f"{link.parent} left behind"
        assert (repo / "dense" / "1" / "model.onnx").is_file()  # what the link pointed to is untouched
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.e2e
def test_a_non_ascii_path_serves_and_reloads_a_deploy_live_through_the_link(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "Modelle_ü"
    deploy(dense_build, repo, "dense", max_batch=4)
    said: list[str] = []
    options = ServerOptions.on_free_ports(repo, model_control="explicit", load_models=("*",))
    supervisor = Supervisor(options, log=said.append)
    try:
        supervisor.start()
        link = supervisor.server.served_repo
        assert said == [supervisor.server.link.line()] and "'ü'" in said[0]  # type: ignore[union-attr]
        assert link != repo and link.resolve() == repo and supervisor.server.repo == repo
        _answers_as_onnxruntime(supervisor.server.grpc_url, dense_build)
        assert deploy(dense_build, repo, "dense", max_batch=4).version == 2  # written to the user's path
        assert supervisor.reload_changed() == ["dense"]
        assert supervisor.server.loaded_models() == {"dense": ["2"]}
        _answers_as_onnxruntime(supervisor.server.grpc_url, dense_build)
    finally:
        supervisor.stop()
    assert supervisor.server.link is None and not link.parent.exists()


@pytest.fixture
def odd_repo(dense_build: Path, tmp_path: Path) -> Path:
    repo = tmp_path / "re po"
    deploy(dense_build, repo, "dense")
    return repo


@pytest.mark.parametrize("stopped_by", [KeyboardInterrupt, QuantserveError], ids=["Ctrl-C", "error"])
def test_the_link_goes_when_a_start_is_cut_short(
    odd_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stopped_by: type[BaseException]
) -> None:
    """Under a TMPDIR with a space too: the link and the wheel's stub go to a plain folder (a stub copied under
    `t mp` died as `bash: /…/t: No such file or directory`, whatever the repository's path)."""
    (tmp_path / "t mp").mkdir()
    (tmp_path / "plain").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t mp"))
    monkeypatch.setattr(stub_path, "FALLBACK_PARENT", tmp_path / "plain")
    scratch_parents: list[Path | None] = []

    def locate(parent: Path | None) -> TritonInstall:
        scratch_parents.append(parent)
        return TritonInstall(Path("/bin/false"), tmp_path)

    monkeypatch.setattr("serving.server.locate_tritonserver", locate)
    server = TritonServer(ServerOptions.on_free_ports(odd_repo, log_path=tmp_path / "triton.log"))
    seen: list[Path] = []

    def launch(install: TritonInstall) -> None:
        seen.append(server.served_repo)
        assert server.served_repo.is_symlink() and server.served_repo.resolve() == odd_repo
        assert f"--model-repository={server.served_repo}" in server.command(install)
        raise stopped_by("stopped")

    monkeypatch.setattr(server, "_launch", launch)
    with pytest.raises(stopped_by):
        server.start()
    assert scratch_parents == [tmp_path / "plain"] and seen[0].parent.parent == tmp_path / "plain"
    assert not seen[0].parent.exists() and server.link is None
    assert (odd_repo / "dense" / "config.pbtxt").is_file()


def test_a_plain_path_is_served_as_it_is(dense_build: Path, tmp_path: Path) -> None:
    deploy(dense_build, tmp_path / "repo", "dense")
    assert link_for_stub(tmp_path / "repo") is None


def test_an_odd_temp_folder_links_from_tmp_and_with_no_plain_folder_refuses(
    odd_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TMPDIR with a space: a link there would break the stub as the repository's own path does."""
    (tmp_path / "t mp").mkdir()
    (tmp_path / "plain").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t mp"))
    monkeypatch.setattr(stub_path, "FALLBACK_PARENT", tmp_path / "plain")
    link = link_for_stub(odd_repo)
    assert link is not None and link.link.parent.parent == tmp_path / "plain" and link.link.resolve() == odd_repo
    link.remove()
    assert list((tmp_path / "plain").iterdir()) == []
    monkeypatch.setattr(stub_path, "FALLBACK_PARENT", tmp_path / "no such folder")
    with pytest.raises(QuantserveError) as refused:
        link_for_stub(odd_repo)
    assert str(refused.value) == (
        f"model repository '{odd_repo}' cannot hold Python-backend models (the embedded target): its path has {SPACE}, "
        f"and neither the temp folder '{tmp_path / 't mp'}' nor '{tmp_path / 'no such folder'}' is a plain, writable "
        "folder to serve it through a link from; set TMPDIR to one, or use a path without it (onnxruntime and "
        "tensorrt models are not affected)"
    )
    (odd_repo / "dense" / "config.pbtxt").unlink()  # no Python-backend model left: Triton's C++ backends open it
    assert link_for_stub(odd_repo) is None


def test_a_killed_serves_link_folder_is_removed_by_the_next_and_its_target_kept(
    odd_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    (tmp_path / "temp").mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "temp" / f"{LINK_PREFIX}{dead.pid}-x"
    stale.mkdir()
    (stale / "repo").symlink_to(odd_repo)
    link = link_for_stub(odd_repo)
    assert link is not None and not stale.exists() and (odd_repo / "dense" / "1" / "model.onnx").is_file()
    link.remove()


def test_every_character_the_stub_command_line_breaks_is_found(tmp_path: Path) -> None:
    """As python_backend's stub_launcher.cc does: `bash -c " exec STUB MODEL_PATH SHM …"`, the path unquoted."""
    (tmp_path / "axb").mkdir()  # what a wildcard or a brace expands to
    (tmp_path / "ayb").mkdir()
    broken = []
    for char in string.punctuation + " \t\n":
        path = tmp_path / f"a{char}b"
        command = f" exec printf '%s\\0' {path} shm"  # `a>b` writes a file `b`: in tmp_path, not the checkout
        argv = subprocess.run(["bash", "-c", command], capture_output=True, cwd=tmp_path).stdout
        if argv != f"{path}\0shm\0".encode():
            broken.append(char)
    assert len(broken) > 10 and all(stub_path_problem(tmp_path / f"a{char}b") for char in broken), broken
    assert stub_path_problem(tmp_path / "a[xy]b") and stub_path_problem(tmp_path / "a{x,y}b")
    assert stub_path_problem(tmp_path / "ok-_.+,:=@%~#!^]}/1") is None
