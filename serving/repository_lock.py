"""One advisory lock per model folder, held while a process changes which versions and config are in it.

Deploys, withdrawals, prunes, rollbacks and `serve`'s clean-up take it for their short steps (a staging
folder made, a config written, a version renamed in or out), never while copying a model or waiting
on a server, so concurrent deploys of one model each see the others' versions and remove only their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

# The lock file lives in the model folder (Triton reads only its numbered folders and config.pbtxt), not in
# the repository: deploys of different models never wait for each other, and the repository holds nothing
# but model folders, as Triton and people listing it expect. The price is that the folder may be removed
# (a withdrawal or `serve`'s clean-up of an empty one, under the lock): whoever waited on the lock then
# holds a lock on a file no longer linked there, sees so, and locks the folder that is there now.
LOCK_NAME = ".quantserve.lock"
# The highest version number ever issued in the folder (serving.versions.next_version), so that numbers only grow.
VERSION_RECORD = ".quantserve.highest-version"
HOUSEKEEPING = frozenset({LOCK_NAME, VERSION_RECORD})  # quantserve's own files, not a model's


@contextlib.contextmanager
def model_folder_lock(model_dir: Path | str, create: bool = False) -> Iterator[None]:
    """Hold `model_dir`'s lock (fcntl.flock, exclusive) for the `with` block; released on close, even if the
    process is killed. `create`: make the folder if it is missing (or was removed while waiting). Without a
    folder, or in one this process cannot write and that has no lock file, no lock is needed: nothing changes."""
    fd = _acquire(Path(model_dir), create)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _acquire(model_dir: Path, create: bool) -> int | None:
    path = model_dir / LOCK_NAME
    while True:
        if create:
            model_dir.mkdir(exist_ok=True)
        fd = _open_lock_file(path)
        if fd is None:
            return None
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _still_linked(fd, path):
            return fd
        os.close(fd)  # the folder was removed while we waited


def _open_lock_file(path: Path) -> int | None:
    try:  # 0o666 less the umask, like any file a deploy writes
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        pass
    try:  # a read-only repository: flock works on a read-only descriptor
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _still_linked(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def remove_if_empty(model_dir: Path) -> bool:
    """Remove `model_dir` if nothing but quantserve's own files are in it (the caller holds the lock); else leave
    it. The version record goes with it: a folder left for it alone would be a model Triton cannot serve."""
    with contextlib.suppress(OSError):
        if {p.name for p in model_dir.iterdir()} <= HOUSEKEEPING:
            for name in HOUSEKEEPING:
                (model_dir / name).unlink(missing_ok=True)
            model_dir.rmdir()  # refuses if a file appeared meanwhile: then the folder stays
            return True
    return False
