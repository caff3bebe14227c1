"""What a model's folder holds, as a fingerprint a running serve compares every poll: its config and, per version
folder, every file's name, size and modification time (a `stat` each: a few µs for a version's handful of files).

Measured (issue 11): the watch looked at config.pbtxt and the version folders' names only, so a model file moved away
or replaced in place under a running serve went unnoticed: under explicit model control nothing was said until a
restart could not load the model; under poll model control Triton retried the load every 15 s, failing each time, with
no word from serve. Files Python writes beside a model (`__pycache__`, written by the Python backend's stub at each
load) and hidden ones (a deploy's staging) are no part of the model, or every load would look like a change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serving.model_config import CONFIG_NAME, MODEL_NAME, is_version_name
from serving.version_folders import unreadable_version_folders

FileStat = tuple[str, int, int]  # a path under the version folder, its size and its mtime (ns)
NOT_MODEL_FILES = ("__pycache__",)


@dataclass(frozen=True)
class ModelPrint:
    """One model folder as last seen: its config's (size, mtime) and each numbered version's files."""

    config: tuple[int, int]
    versions: tuple[tuple[str, tuple[FileStat, ...]], ...]

    @property
    def version_names(self) -> tuple[str, ...]:
        return tuple(version for version, _ in self.versions)


def model_fingerprints(repo: Path) -> dict[str, ModelPrint]:
    """Per model folder with a config: its fingerprint; a change means 'reload'. A file removed while it is read
    (a version folder being deleted) is read as gone, never as an unreadable repository."""
    prints: dict[str, ModelPrint] = {}
    for model_dir in sorted(Path(repo).iterdir()):
        config = model_dir / CONFIG_NAME
        if not MODEL_NAME.fullmatch(model_dir.name) or not config.is_file():
            continue
        stat = config.stat()
        # a folder Triton cannot read as a version counts too: its arrival is a change, named where it is loaded
        versions = sorted(p.name for p in model_dir.iterdir() if is_version_name(p.name))
        versions += unreadable_version_folders(model_dir)
        files = tuple((version, version_files(model_dir / version)) for version in versions)
        prints[model_dir.name] = ModelPrint((stat.st_size, stat.st_mtime_ns), files)
    return prints


def version_files(version_dir: Path) -> tuple[FileStat, ...]:
    """Every file under a version folder (sub-folders too, symlinks followed to their file), sorted."""
    found: list[FileStat] = []
    folders = [(str(version_dir), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name in NOT_MODEL_FILES:
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, f"{prefix}{entry.name}/"))
                    continue
                stat = entry.stat()
            except FileNotFoundError:
                stat = None
            if stat is not None:
                found.append((f"{prefix}{entry.name}", stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


def files_changed(before: ModelPrint | None, after: ModelPrint) -> str:
    """How the files of versions there before and after changed, in a few words ("" where none did): 'version 1's
    files changed on disk (model.onnx removed)'. New or removed versions and config edits are deploys, said as such."""
    if before is None:
        return ""
    old = dict(before.versions)
    said = []
    for version, files in after.versions:
        if version in old and old[version] != files:
            said.append(f"version {version}'s files changed on disk ({_file_changes(old[version], files)})")
    return "; ".join(said)


def _file_changes(before: tuple[FileStat, ...], after: tuple[FileStat, ...]) -> str:
    old = {name: (size, mtime) for name, size, mtime in before}
    new = {name: (size, mtime) for name, size, mtime in after}
    changes = [f"{name} removed" for name in old if name not in new]
    changes += [f"{name} added" for name in new if name not in old]
    for name in (n for n in new if n in old and old[n] != new[n]):
        sizes = f", {old[name][0]} → {new[name][0]} bytes" if old[name][0] != new[name][0] else ""
        changes.append(f"{name} replaced{sizes}")
    return ", ".join(changes)


def versions_removed_only(before: ModelPrint | None, after: ModelPrint) -> set[str] | None:
    """The version folders `after` lacks where that is all that changed since `before` (the config and the other
    versions' files as they were), else None: a load would serve the versions it served from the same files, only
    starting their processes again, unless a removed one is served (session 63: a prune after `deploy --url` was one
    of three loads)."""
    if before is None or before.config != after.config or not after.versions:
        return None
    old = dict(before.versions)
    if any(old.get(version) != files for version, files in after.versions):
        return None
    return set(old) - set(after.version_names)
