"""A serve refused in the instant between the holder's lock and its pid names the holder all the same (session 43)."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from quantserve.errors import QuantserveError
from serving import repository_lock
from serving.endpoints import RUNTIME_ENV
from serving.repository_lock import serving_repository


def test_a_holder_that_writes_its_pid_just_after_locking_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(RUNTIME_ENV, str(tmp_path / "run"))
    repo = tmp_path / "repo"
    repo.mkdir()
    path = repository_lock._serve_lock_path(repo)
    assert path is not None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held, its pid not written yet (another open file: flock sees two holders)
    writer = threading.Timer(0.2, lambda: os.write(fd, b"4242\n"))
    writer.start()
    try:
        with (
            pytest.raises(QuantserveError, match=r"already served by quantserve serve \(pid 4242\)"),
            serving_repository(repo),
        ):
            pass
    finally:
        writer.join()
        os.close(fd)


def test_a_holder_that_never_writes_its_pid_is_still_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(RUNTIME_ENV, str(tmp_path / "run"))
    monkeypatch.setattr(repository_lock, "HOLDER_WAIT_S", 0.1)
    repo = tmp_path / "repo"
    repo.mkdir()
    path = repository_lock._serve_lock_path(repo)
    assert path is not None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with (
            pytest.raises(QuantserveError, match="already served by another quantserve serve"),
            serving_repository(repo),
        ):
            pass
    finally:
        os.close(fd)
