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
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

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
# A deploy, rollback or withdrawal holds a folder's lock for its short steps (well under a second); one held longer
# is a stopped or stuck process, said after LOCK_SAID_AFTER_S and given up on after LOCK_WAIT_S (session 53: a
# deploy suspended by Ctrl-Z held it, and `serve` waited without a word or a limit).
LOCK_SAID_AFTER_S = 1.0
LOCK_WAIT_S = 60.0
LOCK_POLL_S = 0.05
STOPPED = (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP)  # states T and t
HOLDER_WAIT_S = 1.0  # how long a refused serve waits for the lock's holder to write its pid
SERVE_LOCK_PREFIX = "repository-"  # + the repository's device and inode: the serve lock's file in the runtime folder


@contextlib.contextmanager
def model_folder_lock(model_dir: Path | str, create: bool = False) -> Iterator[None]:
    """Hold `model_dir`'s lock (fcntl.flock, exclusive) for the `with` block; released on close, even if the
    process is killed. `create`: make the folder if it is missing (or was removed while waiting). Without a
    folder, or in one this process cannot write and that has no lock file, no lock is needed: nothing changes.
    Held by another process: said on stderr after `LOCK_SAID_AFTER_S`, naming it (its pid is written in the lock
    file), and `FolderLockTimeout` raised after `LOCK_WAIT_S` (a stopped deploy held every later serve start)."""
    fd = _acquire(Path(model_dir), create)
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):  # a pid left behind would name us to whoever waits on an older holder
                os.ftruncate(fd, 0)
            os.close(fd)


def _acquire(model_dir: Path, create: bool) -> int | None:
    path = model_dir / LOCK_NAME
    waiting = _Wait(model_dir, time.monotonic())
    while True:
        if create:
            model_dir.mkdir(exist_ok=True)
        fd = _open_lock_file(path)
        if fd is None:
            return None
        try:
            waiting.lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if _still_linked(fd, path):
            with contextlib.suppress(OSError):  # a read-only descriptor (read-only repository) names no one
                _write_pid(fd)
            return fd
        os.close(fd)  # the folder was removed while we waited


class FolderLockTimeout(QuantserveError):
    """A model folder's lock still held by another process (`holder`, in words) after `LOCK_WAIT_S`: nothing was
    changed."""

    def __init__(self, model_dir: Path, holder: str, pid: str | None) -> None:
        end = f" or end it (kill {pid})" if pid else ""
        super().__init__(
            f"{model_dir}: gave up waiting for its lock after {LOCK_WAIT_S:g} s, held by {holder}; nothing was "
            f"changed: let it finish{end}, then try again"
        )
        self.holder = holder
        self.waited_s = LOCK_WAIT_S


@dataclass
class _Wait:
    """One wait for a model folder's lock (across the folder's removal and re-creation): said once after
    `LOCK_SAID_AFTER_S`, given up after `LOCK_WAIT_S`, naming the holder by the pid it wrote in the lock file."""

    model_dir: Path
    started: float
    said: bool = False

    def lock(self, fd: int) -> None:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            waited = time.monotonic() - self.started
            if waited >= LOCK_WAIT_S:
                raise FolderLockTimeout(self.model_dir, *lock_holder(fd))
            if not self.said and waited >= LOCK_SAID_AFTER_S:
                holder = lock_holder(fd)[0]
                line = f"waiting for {self.model_dir}'s lock, held by {holder}; giving up after {LOCK_WAIT_S:g} s"
                print(line, file=sys.stderr, flush=True)
                self.said = True
            time.sleep(LOCK_POLL_S)


def lock_holder(fd: int) -> tuple[str, str | None]:
    """The process holding a model folder's lock, in words, and its pid where it wrote one and runs; the words
    say whether it is stopped (a deploy suspended by Ctrl-Z held the lock, and every serve start waited on it)."""
    text = _read_pid(fd)
    try:
        status = psutil.Process(int(text)).status() if text.isdigit() else None
    except psutil.Error:  # the pid of an earlier holder, gone
        status = None
    if status is None:  # none written: a quantserve older than session 53 holds it, or one about to write it
        return "another process (a deploy, rollback or withdrawal of that model?)", None
    stopped = f", stopped: resume it (fg, or kill -CONT {text})" if status in STOPPED else ""
    return f"pid {text} (a deploy, rollback or withdrawal of that model{stopped})", text


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
            _write_pid(fd)
            return fd
        os.close(fd)  # its holder removed it as it exited: lock the one there now


def _write_pid(fd: int) -> None:
    """This process's pid as the lock file's whole text: whoever waits on the lock names its holder by it."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _read_pid(fd: int) -> str:
    """The text a lock's holder wrote (`_write_pid`), stripped: its pid, or "" where none is written yet."""
    return os.pread(fd, 64, 0).decode(errors="replace").strip()


def _holder_pid(fd: int) -> str:
    """The pid the lock's holder wrote, waiting up to `HOLDER_WAIT_S` for it: the holder takes the lock first and
    writes its pid just after, so a serve arriving in between read an empty file and named no process (session 42)."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        holder = _read_pid(fd)
        if holder.isdigit() or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)
