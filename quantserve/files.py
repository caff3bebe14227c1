"""Writing a file so that no reader ever sees half of it.

One helper for every results, report and record file (a load run's JSON, tune's and bench's files, serve's
endpoint record, a config put back after a failed deploy); each had its own temporary-file-and-rename.
`serving.model_config.write_config` keeps its own: its temporary's name is what a restart reads to remove
those of killed deploys, and it must be created with a mode Triton's user can read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomic(path: Path | str, data: str | bytes) -> Path:
    """Write `data` to `path` through a hidden temporary beside it (`.NAME.<pid>-<token>`) renamed over it: a reader
    sees the old file or the new one, and a write cut short (a second Ctrl-C while an interrupted run saves, a full
    disk) leaves the old file and no temporary. A write that fails (no space, no permission, a read-only disk)
    raises an OSError of the same errno naming `path` and what was kept (`write_failed`)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        temp.write_bytes(data.encode() if isinstance(data, str) else data)
        temp.replace(path)
    except OSError as exc:
        _remove(temp)
        raise write_failed(path, temp, exc) from exc
    finally:
        _remove(temp)
    return path


def _remove(temp: Path) -> None:
    """The temporary gone, if it can be: a failure to remove it must not hide why the write failed."""
    with contextlib.suppress(OSError):
        temp.unlink(missing_ok=True)


def write_failed(path: Path, temp: Path, exc: OSError) -> OSError:
    """The error of a failed `write_atomic`, one line as the CLI prints it (`PATH: reason`): a full disk's ENOSPC
    named no file at all, an unwritable folder named the hidden temporary. Its errno is kept for callers that
    look."""
    reason = (exc.strerror or str(exc)).lower()
    kept = "the old file is untouched" if path.exists() else "no file was made"
    left = f"the temporary {temp.name} is left beside it" if temp.exists() else "no temporary is left"
    return OSError(exc.errno, f"{reason}; nothing written: {kept} and {left}", str(path))
