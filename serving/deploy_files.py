"""The file system side of a deploy: the repository and model folders made (or one clear error), files copied and
written durably (fsynced: a crash after a deploy's rename must not leave a version of empty files), and a full disk
named by the folder being written."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from quantserve.json_files import strict_json

WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)


# what set the limit a write met, where its errno alone does not say: "file too large" (session 55, under
# `ulimit -f 1000`) named neither the limit nor that the deploy wrote nothing
WRITE_CAUSES = {errno.EFBIG: "this process's file size limit, ulimit -f, cut a file written there"}
NOTHING_WRITTEN = "nothing written"


def naming_the_repository(exc: OSError, model_dir: Path) -> OSError:
    """A full (or read-only) disk, or a file size limit, named by the model folder being written, not by the source
    file being read (shutil names the source) nor a hidden temporary name, with its cause and what the deploy left
    (the caller has removed its staged version); other errors unchanged."""
    if exc.errno not in WRITE_ERRNOS:
        return exc
    reason = exc.strerror or os.strerror(exc.errno or 0)
    cause = f" ({WRITE_CAUSES[exc.errno]})" if exc.errno in WRITE_CAUSES else ""
    left = "" if NOTHING_WRITTEN in reason else f"; {NOTHING_WRITTEN}: its versions and config are as they were"
    return OSError(exc.errno, f"{reason}{cause}{left}", str(model_dir))


def prepare_repo_dir(repo: Path) -> None:
    """Create the repository if needed; one that cannot be written is one clear error."""
    try:
        repo.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise QuantserveError(f"{repo}: cannot create the model repository ({exc.strerror})") from exc
    if not os.access(repo, os.W_OK | os.X_OK):
        raise QuantserveError(f"{repo}: model repository {unwritable_reason(repo)}; nothing was written")


def prepare_model_dir(repo: Path, name: str) -> Path:
    """Create `repo/name` if needed; a folder that cannot be made or written is one clear error."""
    model_dir = repo / name
    if model_dir.exists() and not model_dir.is_dir():
        raise QuantserveError(f"{model_dir}: exists and is not a folder")
    try:
        model_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise QuantserveError(f"{model_dir}: cannot create the model folder ({exc.strerror})") from exc
    if not os.access(model_dir, os.W_OK | os.X_OK):
        raise QuantserveError(f"{model_dir}: model folder {unwritable_reason(model_dir)}; nothing was written")
    return model_dir


def unwritable_reason(folder: Path) -> str:
    """Why this process cannot write `folder`: "is on a read-only file system", or "is not writable (mode 0555,
    owner uid 0; this process runs as uid 1000)". A read-only mount said only "is not writable", where rollback on
    the same repository said "read-only file system" (probe 65A)."""
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "is on a read-only file system"
        status = folder.stat()
    except OSError as exc:
        return f"is not writable ({exc.strerror})"
    owner = f"owner uid {status.st_uid}; this process runs as uid {os.geteuid()}"
    return f"is not writable (mode {status.st_mode & 0o7777:04o}, {owner})"


def copy_file(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def write_json(path: Path, data: dict[str, Any]) -> None:
    """`data` as strict JSON (a NaN as null: other readers refuse a bare NaN), fsynced."""
    with open(path, "w") as handle:
        handle.write(strict_json(data, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def fsync_path(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
