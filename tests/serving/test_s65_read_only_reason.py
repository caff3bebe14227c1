"""A deploy into a repository it cannot write says why: a read-only mount said only "model repository is not
writable", where rollback on the same repository said "read-only file system" (probe 65A)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import serving.deploy_files as deploy_files
from quantserve.errors import QuantserveError
from serving.deploy import deploy


def _unwritable(monkeypatch: pytest.MonkeyPatch, folder: Path, read_only: bool) -> None:
    """`folder` unwritable for this process alone (root writes anywhere; a bind mount needs root)."""
    access, statvfs = os.access, os.statvfs

    def no_write(path: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        return False if Path(path) == folder and mode & os.W_OK else access(path, mode, *args, **kwargs)

    class Flags:
        f_flag = os.ST_RDONLY if read_only else 0

    monkeypatch.setattr(deploy_files.os, "access", no_write)
    monkeypatch.setattr(deploy_files.os, "statvfs", lambda path: Flags() if Path(path) == folder else statvfs(path))


def test_a_read_only_mount_is_named(dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _unwritable(monkeypatch, repo, read_only=True)
    with pytest.raises(QuantserveError, match="model repository is on a read-only file system; nothing was written"):
        deploy(dense_build, repo, "dense")
    assert list(repo.iterdir()) == []


def test_permissions_are_named(dense_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    repo.chmod(0o555)
    _unwritable(monkeypatch, repo, read_only=False)
    with pytest.raises(QuantserveError, match=r"is not writable \(mode 0555, owner uid \d+; this process runs as uid"):
        deploy(dense_build, repo, "dense")
    assert list(repo.iterdir()) == []
