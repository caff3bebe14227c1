"""Writing a file so that no reader ever sees half of it.

One helper for every results, report and record file (a load run's JSON, tune's and bench's files, serve's
endpoint record, a config put back after a failed deploy); each had its own temporary-file-and-rename.
`serving.model_config.write_config` keeps its own: its temporary's name is what a restart reads to remove
those of killed deploys, and it must be created with a mode Triton's user can read.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path | str, data: str | bytes) -> Path:
    """Write `data` to `path` through a hidden temporary beside it (`.NAME.<pid>-<token>`) renamed over it: a reader
    sees the old file or the new one, and a write cut short (a second Ctrl-C while an interrupted run saves, a full
    disk) leaves the old file and no temporary."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}")
    try:
        temp.write_bytes(data.encode() if isinstance(data, str) else data)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    return path
