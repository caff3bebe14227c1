"""`quantserve tune` refuses, before any trial, a --repo (or its --name folder) the winner could not be deployed into.

Measured (session 58): `tune … --repo ro/repo` on a read-only file system ran every trial and the confirmation
(71-86 s), then failed "ro/repo: cannot create the model repository (Read-only file system)", and wrote no tune.json
or tune.html: the search was lost. --out was already refused up front; --repo now is too, in one line, exit 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from test_s27_tune_checks import build, tune_argv

from quantserve.cli import main

__all__ = ["build"]  # the fixture, used by name


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    assert main(argv) == 2
    assert not (tmp_path / "out").exists(), "refused before any trial: nothing written"
    return capsys.readouterr().err.strip()


def test_a_repo_on_a_read_only_file_system_is_refused_before_any_trial(
    tmp_path: Path, build: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made read-only for this process alone (a bind mount needs root): os.access says EROFS, statvfs ST_RDONLY."""
    ro = tmp_path / "ro"
    ro.mkdir()
    access, statvfs = os.access, os.statvfs

    def no_write(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        return False if Path(path) == ro and mode & os.W_OK else access(path, mode, *args, **kwargs)

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "access", no_write)
    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly() if Path(path) == ro else statvfs(path))
    repo = ro / "repo"
    argv = [*tune_argv(build, tmp_path, "--out", str(tmp_path / "out")), "--repo", str(repo)]
    assert _refused(argv, capsys, tmp_path) == (
        f"quantserve: error: --repo {repo}: {ro} is on a read-only file system, so the winner could not be deployed "
        "there (nothing was searched)"
    )
    assert not repo.exists()


def test_a_repo_or_model_folder_that_is_a_file_is_refused_before_any_trial(
    tmp_path: Path, build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    out = ["--out", str(tmp_path / "out")]
    for repo, said in ((afile, ""), (afile / "repo", f"{afile} ")):
        argv = [*tune_argv(build, tmp_path, *out), "--repo", str(repo)]
        assert _refused(argv, capsys, tmp_path) == f"quantserve: error: --repo {repo}: {said}is a file, not a folder"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "m").write_text("mine\n")  # tune_argv deploys as --name m
    argv = tune_argv(build, tmp_path, *out)
    assert _refused(argv, capsys, tmp_path) == f"quantserve: error: --name m: {repo / 'm'} is a file, not a folder"
    assert afile.read_text() == (repo / "m").read_text() == "mine\n"
