"""A repository path the Python backend's stub cannot start from (a space, a non-ASCII letter, shell characters) is
refused by `deploy` before anything is written and by `serve` before tritonserver starts; it hung `serve` for its
whole startup timeout (a space) or failed the load with a UnicodeEncodeError (`repo_ü`). ONNX Runtime models are
not refused."""

from __future__ import annotations

import shutil
import string
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from serving_models import DENSE_IO

from quantserve.artifact import Manifest
from quantserve.cli import main
from serving.deploy import deploy
from serving.stub_path import check_repository_serves_its_models, stub_path_problem

WHY = {
    " ": "a space (' '), which splits the path where Triton starts the model's stub (a shell, path unquoted)",
    "ü": "the non-ASCII character 'ü', which the stub's embedded Python cannot encode (it reads file names as ASCII "
    "whatever the locale)",
}


def refusal(repo: Path, char: str) -> str:
    return (
        f"quantserve: error: model repository '{repo}' cannot hold Python-backend models (the embedded target): its "
        f"path has {WHY[char]}; use a path without it (onnxruntime and tensorrt models are not affected)\n"
    )


@pytest.mark.parametrize("char", [" ", "ü"])
def test_deploy_refuses_the_path_for_the_embedded_target_only(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], char: str
) -> None:
    repo = tmp_path / f"re{char}po"
    assert main(["deploy", str(dense_build), "--repo", str(repo), "--name", "dense"]) == 2
    assert capsys.readouterr().err == refusal(repo, char)
    assert not repo.exists()
    onnxruntime_build = tmp_path / "ort"
    shutil.copytree(dense_build, onnxruntime_build)
    Manifest("dense", *DENSE_IO, target="onnxruntime", files={"model": "model.onnx"}).save(onnxruntime_build)
    assert deploy(onnxruntime_build, repo, "dense").version == 1  # Triton's C++ backends open any path
    check_repository_serves_its_models(repo)


def test_serve_refuses_it_before_starting_tritonserver(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    deploy(dense_build, tmp_path / "repo", "dense")
    repo = (tmp_path / "repo").rename(tmp_path / "re po")  # deployed by a quantserve without the check
    ports = [str(free_port_factory()) for _ in range(3)]
    command = ["serve", "--repo", str(repo), "--grpc-port", ports[0], "--http-port", ports[1]]
    assert main([*command, "--metrics-port", ports[2], "--startup-timeout", "15"]) == 2  # it waited the timeout out
    assert capsys.readouterr().err == refusal(repo, " ")


def test_every_character_the_stub_command_line_breaks_is_refused(tmp_path: Path) -> None:
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
