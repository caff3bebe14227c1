"""An output folder written whole or not at all: a run works in a hidden sibling folder renamed into place at the end.

A failed run leaves no half-written output, and an existing output is replaced only once the new one is complete.
The hidden folders carry their run's pid (`optimizer.scratch`), so those a killed run left are removed by the next,
and a run killed between the two renames that replace an output has its previous output put back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Protocol

from optimizer.scratch import folder_mode, make_owned_dir, owned_tempdir, remove_stale_dirs, stale_dirs
from quantserve.artifact import MANIFEST_NAME, Artifact
from quantserve.errors import QuantserveError


class StagedJob(Protocol):
    """Work that writes its output into `staging`, using `work` for what is not shipped (`OptimizeJob`)."""

    def run(self, staging: Path, work: Path) -> Artifact: ...


def check_output_folder(out_dir: Path) -> None:
    """Refuse, before any work, an output folder the finished run could not take or should not replace whole: the
    current folder or one holding it (`--out .` failed at the end on "device or resource busy", leaving a hidden
    `.old-` folder behind), a file, and a folder of other things — not empty, no manifest.json of an earlier build
    — whose every file the rename would have deleted in silence (session 41: the user's calibration .npz with it)."""
    here = Path.cwd().resolve()
    where = out_dir.resolve()
    if str(out_dir) in ("", ".") or where == here or where in here.parents:
        raise QuantserveError(
            f"--out {str(out_dir)!r}: the current folder or one holding it; the build replaces its output folder "
            "whole: name a folder of its own (e.g. --out build/model)"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise QuantserveError(f"--out {out_dir}: exists and is not a folder; nothing written")
    if out_dir.is_dir() and not (out_dir / MANIFEST_NAME).is_file() and any(out_dir.iterdir()):
        raise QuantserveError(
            f"--out {out_dir}: a folder of other files (no {MANIFEST_NAME} of an earlier build); the build replaces "
            "its output folder whole and would delete them: name a new folder or empty this one; nothing written"
        )


def run_atomically(job: StagedJob, out_dir: Path) -> Artifact:
    """Run `job` in a hidden sibling folder and rename it to `out_dir` only once everything succeeded.

    The hidden folders carry this process's id; those a killed earlier run left behind are removed first.
    """
    _restore_retired(out_dir)
    remove_stale_dirs(out_dir.parent, tuple(f".{out_dir.name}.{kind}-" for kind in ("partial", "work", "old")))
    staging = make_owned_dir(out_dir.parent, f".{out_dir.name}.partial-")
    try:
        with owned_tempdir(out_dir.parent, f".{out_dir.name}.work-") as work:
            built = job.run(staging, work)
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Artifact(out_dir / built.path.name, built.manifest)


def _restore_retired(out_dir: Path) -> None:
    """Put back the previous output a run killed between `_move_into_place`'s two renames left retired.

    That run had moved the complete previous output into its `.old-` folder and died before renaming
    its own into place, so `out_dir` is missing; the previous one is whole, and becomes the output again.
    """
    if os.path.lexists(out_dir):
        return
    for retired in stale_dirs(out_dir.parent, (f".{out_dir.name}.old-",)):
        if (retired / "previous").is_dir():
            os.rename(retired / "previous", out_dir)
            return


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished folder to `out_dir`, replacing an existing one only now that all succeeded; with the
    mode a folder made here gets (mkdtemp's is 0700: a build made by one user was unreadable to the image's)."""
    staging.chmod(folder_mode())
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not out_dir.is_dir():
        raise QuantserveError(f"{out_dir}: exists and is not a folder")
    retired = make_owned_dir(out_dir.parent, f".{out_dir.name}.old-")
    os.rename(out_dir, retired / "previous")
    os.rename(staging, out_dir)
    shutil.rmtree(retired, ignore_errors=True)
