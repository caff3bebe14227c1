"""The Python backend's shared memory regions of one tritonserver start: named apart from every other server's, and
removed at its stop (a killed server leaves them in /dev/shm)."""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")  # where Linux keeps POSIX shared memory (shm_open) as files
_SERVER_STARTS = itertools.count(1)


def python_shm_prefix() -> str:
    """A Python backend shared memory prefix no other tritonserver uses: this process's pid and a start count.

    Triton names each model instance's region `<prefix><uuid>`; the default prefix is shared by every server.
    """
    return f"quantserve_{os.getpid()}_{next(_SERVER_STARTS)}_"


def remove_shm_regions(prefix: str) -> None:
    """Unlink the Python backend regions named with `prefix`: a graceful tritonserver removes its own, but a
    killed one leaves each stub's region (up to hundreds of MB) in /dev/shm, and restarts add them up."""
    if not SHM_DIR.is_dir():
        return
    for path in SHM_DIR.iterdir():
        if path.name.startswith(prefix):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
