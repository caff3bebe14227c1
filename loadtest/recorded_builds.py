"""The build folders a results folder's models were optimized into, recorded beside its results (`builds.json`), so
`quantserve report RESULTS` without `--build` keeps their in-process INT8 vs FP32 speed in the verdict.

The quick-start probe (issue 11): the demo's report said `FAIL · INT8 1.15× FP32 served … · 0.93× in-process`, and
`quantserve report reports/demo`, as the README shows it, rewrote it to `PASS · INT8 1.15× …`, since the folder
recorded no builds. Paths are kept relative to the results folder: a clone moved whole still finds them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from quantserve.errors import QuantserveError
from quantserve.files import write_atomic

BUILDS_FILE = "builds.json"


def record_builds(results_dir: Path, builds: Sequence[Path]) -> Path:
    """Write `builds.json` into `results_dir`: each build folder, relative to it."""
    relative = [os.path.relpath(Path(build).resolve(), Path(results_dir).resolve()) for build in builds]
    return write_atomic(Path(results_dir) / BUILDS_FILE, json.dumps({"builds": relative}, indent=2) + "\n")


def recorded_builds(results_dir: Path) -> list[Path]:
    """The build folders `builds.json` in `results_dir` records; none where there is no such file. A recorded folder
    gone, or a file that is not the record, is refused in one line: a verdict silently without its builds'
    in-process speed is the fault this file exists to prevent."""
    path = Path(results_dir) / BUILDS_FILE
    if not path.is_file():
        return []
    try:
        builds = [Path(results_dir) / str(build) for build in json.loads(path.read_text())["builds"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise QuantserveError(f"{path}: not a record of builds ({type(exc).__name__}: {exc})") from None
    for build in builds:
        if not (build / "manifest.json").is_file():
            raise QuantserveError(
                f"{path}: recorded build {os.path.normpath(build)} has no manifest.json (moved or removed): pass "
                f"--build FOLDER, or delete {path} to report without the in-process speed"
            )
    return builds
