"""A config that pins (after a rollback) only versions whose folders are gone is named at serve's first start and by
`rollback`: before, serve printed nothing for its 180 s startup timeout and then a log tail naming neither model nor
cause, and rollback said `no version older than 0 to roll back to`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_deploy_checks import serve_args

from quantserve.cli import main
from quantserve.errors import QuantserveError
from serving.deploy import deploy
from serving.repository import prepare_repository
from serving.versions import rollback


def pinned_to_a_removed_version(build: Path, repo: Path) -> Path:
    """Versions 1 and 2 deployed, rolled back to 1, then folder 1 removed (by hand, while serve was down)."""
    deploy(build, repo, "m")
    deploy(build, repo, "m")
    assert rollback(repo, "m") == 1
    shutil.rmtree(repo / "m" / "1")
    return repo / "m"


def reason(model_dir: Path) -> str:
    return (
        "pins version 1 (config.pbtxt version_policy specific), which is not on disk (versions on disk: 2); "
        f"'quantserve rollback --repo {model_dir.parent} --name m --to 2' serves one of them"
    )


def test_the_first_start_names_the_model_its_pinned_version_and_the_versions_on_disk(
    dense_build: Path, tmp_path: Path
) -> None:
    model_dir = pinned_to_a_removed_version(dense_build, tmp_path / "repo")
    with pytest.raises(QuantserveError) as refused:
        prepare_repository(tmp_path / "repo")
    assert str(refused.value) == f"{model_dir}: model 'm' {reason(model_dir)}; deploy it or remove the folder"
    assert prepare_repository(tmp_path / "repo", strict=False) == {"m": reason(model_dir)}  # a restart skips it


def test_serve_refuses_it_at_once_in_one_line(
    dense_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], free_port_factory: Callable[[], int]
) -> None:
    model_dir = pinned_to_a_removed_version(dense_build, tmp_path / "repo")
    assert main(serve_args(tmp_path / "repo", free_port_factory)) == 2
    err = capsys.readouterr().err
    assert err == f"quantserve: error: {model_dir}: model 'm' {reason(model_dir)}; deploy it or remove the folder\n"


def test_rollback_says_the_pinned_version_is_missing(dense_build: Path, tmp_path: Path) -> None:
    model_dir = pinned_to_a_removed_version(dense_build, tmp_path / "repo")
    config = (model_dir / "config.pbtxt").read_bytes()
    with pytest.raises(QuantserveError) as refused:
        rollback(tmp_path / "repo", "m")
    assert str(refused.value) == f"{model_dir}: model 'm' {reason(model_dir)}"
    assert (model_dir / "config.pbtxt").read_bytes() == config
    assert rollback(tmp_path / "repo", "m", to=2) == 2
    prepare_repository(tmp_path / "repo")  # servable again


def test_a_pin_with_its_version_on_disk_is_not_named(dense_build: Path, tmp_path: Path) -> None:
    deploy(dense_build, tmp_path / "repo", "m")
    deploy(dense_build, tmp_path / "repo", "m")
    rollback(tmp_path / "repo", "m")
    shutil.rmtree(tmp_path / "repo" / "m" / "2")
    assert prepare_repository(tmp_path / "repo") == {}


def test_with_no_version_left_rollback_says_to_deploy_again(dense_build: Path, tmp_path: Path) -> None:
    model_dir = pinned_to_a_removed_version(dense_build, tmp_path / "repo")
    shutil.rmtree(model_dir / "2")
    with pytest.raises(QuantserveError) as refused:
        rollback(tmp_path / "repo", "m")
    assert str(refused.value).endswith("which is not on disk (versions on disk: none); deploy it again")
