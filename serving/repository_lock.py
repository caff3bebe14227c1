"""One advisory lock per model folder, held while a process changes which versions and config are in it, and
one per repository, held by the `quantserve serve` that serves it.

Deploys, withdrawals, prunes, rollbacks and `serve`'s clean-up take the folder's lock for their short steps (a
staging folder made, a config written, a version renamed in or out), never while copying a model or waiting
on a server, so concurrent deploys of one model each see the others' versions and remove only their own.
`serve` takes the repository's before it starts anything and keeps it to its exit: two started 0.5 s apart
both ran, since the endpoint record that told them apart is written only once tritonserver is ready (10–20 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from quantserve.errors import QuantserveError

# The lock file lives in the model folder (Triton reads only its numbered folders and config.pbtxt), not in
# the repository: deploys of different models never wait for each other, and the repository holds nothing
# but model folders, as Triton and people listing it expect. The price is that the folder may be removed
# (a withdrawal or `serve`'s clean-up of an empty one, under the lock): whoever waited on the lock then
# holds a lock on a file no longer linked there, sees so, and locks the folder that is there now.
LOCK_NAME = ".quantserve.lock"
# The highest version number ever issued in the folder (serving.versions.next_version), so that numbers only grow.
VERSION_RECORD = ".quantserve.highest-version"
# The versions a rollback moved away from (serving.versions: the default rollback target skips them).
ROLLED_BACK_RECORD = ".quantserve.rolled-back"
HOUSEKEEPING = frozenset({LOCK_NAME, VERSION_RECORD, ROLLED_BACK_RECORD})  # quantserve's own files, not a model's
HOLDER_WAIT_S = 1.0  # how long a refused serve waits for the lock's holder to write its pid
SERVE_LOCK_PREFIX = "repository-"  # + the repository's device and inode: the serve lock's file in the runtime folder


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


@contextlib.contextmanager
def serving_repository(repo: Path) -> Iterator[None]:
    """Hold `repo`'s serve lock (fcntl.flock, exclusive, never waited for) for the `with` block, or raise at once
    naming the process that holds it, starting or running. Released on exit and by the kernel when the holder is
    killed, so a killed serve leaves nothing stale. The lock file lives in the runtime folder (serving.endpoints),
    named by the repository's device and inode: a read-only repository, or one reached by a link or another
    path, is the same repository, and the repository holds nothing but model folders. Without the folder (the
    server's start names it) or a runtime folder to write, no lock: the endpoint records still tell."""
    path = _serve_lock_path(repo)
    fd = _acquire_serve_lock(repo, path) if path is not None else None
    try:
        yield
    finally:
        if fd is not None and path is not None:
            with contextlib.suppress(OSError):
                if _still_linked(fd, path):  # removed while held: whoever opened it before sees it unlinked
                    path.unlink()
            os.close(fd)


def _serve_lock_path(repo: Path) -> Path | None:
    from serving.endpoints import runtime_dir

    try:
        held = os.stat(repo)
        folder = runtime_dir()
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder / f"{SERVE_LOCK_PREFIX}{held.st_dev:x}-{held.st_ino:x}.lock"


def _acquire_serve_lock(repo: Path, path: Path) -> int | None:
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_pid(fd)
            os.close(fd)
            by = f"quantserve serve (pid {holder})" if holder.isdigit() else "another quantserve serve"
            raise QuantserveError(
                f"{repo}: already served by {by}, starting or running; stop it first, or serve a copy of the repository"
            ) from None
        if _still_linked(fd, path):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # its holder removed it as it exited: lock the one there now


def _holder_pid(fd: int) -> str:
    """The pid the lock's holder wrote, waiting up to `HOLDER_WAIT_S` for it: the holder takes the lock first and
    writes its pid just after, so a serve arriving in between read an empty file and named no process (session 42)."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        if holder.isdigit() or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)
