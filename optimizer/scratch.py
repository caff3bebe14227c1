"""Hidden scratch folders named for the process that owns them, and removal of those a killed run left behind.

A run that is killed (out of memory, Ctrl-C twice, a lost machine) cannot clean up after itself, so
every hidden folder is named `PREFIX<pid>-<random>`: the next run removes the folders whose process
is gone and never touches one whose process still runs. A reused pid only keeps a folder longer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def make_owned_dir(parent: Path, prefix: str) -> Path:
    """Create `parent/PREFIX<pid>-<random>` for this process (parent created if missing)."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=f"{prefix}{os.getpid()}-"))


def folder_mode() -> int:
    """The mode `mkdir` gives a new folder under this process's umask (0755 under 022)."""
    mask = os.umask(0o022)  # reading the umask means setting it: put straight back
    os.umask(mask)
    return 0o777 & ~mask


@contextlib.contextmanager
def owned_tempdir(parent: Path, prefix: str) -> Iterator[Path]:
    """A `make_owned_dir` folder that is removed on exit, whatever happens inside."""
    folder = make_owned_dir(parent, prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_dirs(parent: Path, prefixes: tuple[str, ...]) -> list[Path]:
    """Remove `parent/PREFIX<pid>-*` folders whose process is gone; return what was removed.

    Names without a pid (written before this scheme) are left alone: nothing says their run ended.
    """
    removed = stale_dirs(parent, prefixes)
    for entry in removed:
        shutil.rmtree(entry, ignore_errors=True)
    return removed


def stale_dirs(parent: Path, prefixes: tuple[str, ...]) -> list[Path]:
    """The `parent/PREFIX<pid>-*` folders (not links) whose process is gone, in name order."""
    if not parent.is_dir():
        return []
    return [
        entry
        for entry in sorted(parent.iterdir())
        if (pid := _owner_pid(entry.name, prefixes)) is not None
        and entry.is_dir()
        and not entry.is_symlink()
        and not process_alive(pid)
    ]


def _owner_pid(name: str, prefixes: tuple[str, ...]) -> int | None:
    for prefix in prefixes:
        if name.startswith(prefix):
            pid, dash, _ = name[len(prefix) :].partition("-")
            return int(pid) if dash and pid.isdigit() else None
    return None


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one of another user counts as alive; a zombie, dead but
    not yet reaped by its parent, does not: a `serve` killed with SIGKILL and restarted at once, as a supervisor
    would, was refused for a second as "already served" by its own dead pid)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether /proc says the process has exited and waits to be reaped (state Z); False where /proc cannot tell."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
