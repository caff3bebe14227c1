"""A folder Triton reads as a version that is not there is named by deploy, rollback and serve.

Measured (session 54): Triton reads a version folder's name with std::stoll, taking the number it starts with, then
loads that version from the folder named by the number alone. A backup `5.bak` beside versions 1 and 4 made Triton
load version 5 ("Python model file not found in '…/5/model.py'") and fail the model; quantserve counted only 1 and 4.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_deploy_checks import serve_args

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.repository import prepare_repository
from serving.version_folders import misread_version_folders
from serving.versions import existing_versions, rollback


def said(name: str, version: int, more: str = "") -> str:
    return (
        f"has a folder '{name}' that Triton reads as version {version}{more}, with no folder '{version}' to load it "
        "from (the model would fail to load): rename it to start with a letter"
    )


def test_which_folders_triton_misreads(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    model_dir = repo / "dense"
    for name in ("1.bak", "05", "bak-7", ".deploy-x", "0"):  # its own folder there, skipped by Triton, or no number
        (model_dir / name).mkdir()
    (model_dir / "8.txt").write_text("a file: Triton reads folders only")
    assert misread_version_folders(model_dir) == []
    for name in ("5.bak", " 2", "+3"):
        (model_dir / name).mkdir()
    assert misread_version_folders(model_dir) == [(" 2", 2), ("+3", 3), ("5.bak", 5)]


def test_deploy_and_rollback_refuse_it_and_change_nothing(dense_build: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "dense", prune=False)
    config = (repo / "dense" / "config.pbtxt").read_text()
    (repo / "dense" / "3-old").mkdir()
    for act in (lambda: deploy(dense_build, repo, "dense"), lambda: rollback(repo, "dense")):
        with pytest.raises(QuantserveError) as raised:
            act()
        assert str(raised.value) == f"{repo / 'dense'}: " + said("3-old", 3)
    assert existing_versions(repo / "dense") == [1, 2]
    assert (repo / "dense" / "config.pbtxt").read_text() == config


def test_serve_names_it_before_tritonserver_starts(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    repo = tmp_path / "repo"
    deploy(dense_build, repo, "dense")
    deploy(dense_build, repo, "other")
    (repo / "other" / "5.bak").mkdir()
    (repo / "other" / "6.bak").mkdir()
    assert main(serve_args(repo, free_port_factory)) == 2
    reason = said("5.bak", 5, " (and 1 more such)")
    assert capsys.readouterr().err == f"quantserve: error: {repo / 'other'}: model 'other' {reason}\n"
    assert prepare_repository(repo, strict=False) == {"other": reason}
