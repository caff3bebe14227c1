"""Folders and entries in a model folder that Triton cannot read as versions: checked before anything is written.

Triton reads every entry of a model folder, following links, and reads a version number off the start of each
folder's name (std::stoll). A name above int64 aborts tritonserver, a name such as `5.bak` loads a version that is
not there, and a link leading nowhere fails the model. Kept apart from `serving.versions` (which issues, serves and
prunes versions) because deploy, rollback, `serve`'s watcher and the repository check all ask the same question
here, each naming the folder in its own one line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from quantserve.errors import QuantserveError
from serving.model_config import MAX_VERSION, is_version_name

MOVE_OUT = "out of the model folder"  # how a refusal naming a version folder Triton cannot read ends
MEND_LINKS = ("remove or mend it", "remove or mend them")  # how one naming links that lead nowhere ends
RENAME = "rename it to start with a letter"  # how one naming a folder Triton misreads as a version ends
# What Triton's std::stoll reads of a folder name: blanks, a sign, digits (the rest is ignored: '7abc' is 7)
_STOLL_PREFIX = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", re.ASCII)


def unreadable_version_folders(model_dir: Path) -> list[str]:
    """The folders in `model_dir` whose name Triton reads as a number too big for int64 (`99999999999999999999`):
    its std::stoll throws out_of_range, uncaught, and tritonserver aborts (SIGABRT), taking every model down."""
    return sorted(p.name for p in Path(model_dir).iterdir() if p.is_dir() and _aborts_triton(p.name))


def _aborts_triton(name: str) -> bool:
    if len(name) > 1 and name.startswith("0"):
        return False  # Triton skips a name with a leading zero before reading it
    number = _STOLL_PREFIX.match(name)
    return number is not None and not -MAX_VERSION - 1 <= int(number.group(1)) <= MAX_VERSION


def broken_links(model_dir: Path) -> list[tuple[str, str]]:
    """The entries of `model_dir` (hidden ones too) that are links leading nowhere or round in a loop, each with
    where it points. Triton stats each entry of a model folder, following links, to find its versions, and fails the
    model on one it cannot stat (measured, session 54: a dangling link named `7`, `notes` or `.hidden` beside version
    1 failed it, "Poll failed for model directory … failed to stat file", yet deploy had written version 4 beside
    it; one deeper, inside a version folder, is only logged). An entry gone between listing and reading it (a pruned
    version's) is not one: reading where it points fails too."""
    found: list[tuple[str, str]] = []
    try:
        entries = sorted(os.scandir(model_dir), key=lambda entry: entry.name)
    except OSError:  # removed meanwhile
        return found
    for entry in entries:
        try:
            entry.stat()  # follows links, as Triton's stat does
        except OSError:
            try:
                found.append((entry.name, os.readlink(entry.path)))
            except OSError:
                continue  # gone since it was listed
    return found


def misread_version_folders(model_dir: Path) -> list[tuple[str, int]]:
    """The folders in `model_dir` Triton reads as a version whose own folder is not there, each with that number: it
    reads the number a name starts with (`5.bak`, `3-old`, ` 2`, `+4`), then loads the version from the folder
    named by the number alone. Measured (session 54): a backup `5.bak` beside versions 1 and 4 made Triton load
    version 5 ("Python model file not found in '…/5/model.py'") and fail the model."""
    found = []
    for path in sorted(Path(model_dir).iterdir()):
        number = None if path.name.startswith("0") else _STOLL_PREFIX.match(path.name)
        if number is None or is_version_name(path.name) or not path.is_dir() or _aborts_triton(path.name):
            continue
        version = int(number.group(1))
        if not (Path(model_dir) / str(version)).is_dir():
            found.append((path.name, version))
    return found


def unreadable_versions_because(model_dir: Path) -> str | None:
    """Why Triton cannot read this model folder's version folders (it would abort, or load a version that is not
    there), or an entry in it (it would fail the model), in a phrase; or None."""
    names = unreadable_version_folders(model_dir)
    if not names:
        return _misread_because(model_dir) or _broken_links_because(model_dir)
    word = "folder" if len(names) == 1 else "folders"
    listed = ", ".join(f"'{name}'" for name in names)
    return (
        f"has version {word} {listed} above Triton's largest version number {MAX_VERSION} "
        f"(tritonserver would abort, taking every model down); move {'it' if len(names) == 1 else 'them'} {MOVE_OUT}"
    )


def _misread_because(model_dir: Path) -> str | None:
    misread = misread_version_folders(model_dir)
    if not misread:
        return None
    name, version = misread[0]
    more = f" (and {len(misread) - 1} more such)" if len(misread) > 1 else ""
    return (
        f"has a folder '{name}' that Triton reads as version {version}{more}, with no folder '{version}' to load it "
        f"from (the model would fail to load): {RENAME}"
    )


def _broken_links_because(model_dir: Path) -> str | None:
    links = broken_links(model_dir)
    if not links:
        return None
    named = ", ".join(f"'{path}' → '{target}'" for path, target in links[:3])
    more = f" and {len(links) - 3} more" if len(links) > 3 else ""
    which = "a link that leads" if len(links) == 1 else "links that lead"
    return (
        f"has {which} nowhere, {named}{more} (tritonserver reads each entry of a model folder and fails the model "
        f"on one it cannot read): {MEND_LINKS[len(links) > 1]}"
    )


def check_version_folders(model_dir: Path) -> None:
    """Raise, in one line naming them, where `model_dir` holds a folder Triton cannot read as a version, or a link
    that leads nowhere."""
    problem = unreadable_versions_because(model_dir)
    if problem:
        raise QuantserveError(f"{model_dir}: {problem}")
