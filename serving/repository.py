"""The model repository as `serve` finds it: leftovers of killed deploys cleared, folders Triton cannot serve named.

A deploy works in a hidden staging folder inside the model folder (Triton skips names that are not
integers); one killed mid-copy leaves it behind, and a first deploy killed so leaves a model folder with
no version, on which Triton would wait its whole startup timeout naming nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from optimizer.scratch import process_alive
from quantserve.errors import QuantserveError
from serving.config_check import FIX, config_mismatch, missing_model_file
from serving.model_config import CONFIG_NAME
from serving.repository_lock import (
    ROLLED_BACK_RECORD,
    VERSION_RECORD,
    FolderLockTimeout,
    model_folder_lock,
    remove_if_empty,
)
from serving.version_folders import MEND_LINKS, MOVE_OUT, RENAME, unreadable_versions_because
from serving.versions import existing_versions, pinned_missing_because

STAGING_PREFIX = ".deploy-"


def remove_stale_staging(model_dir: Path) -> None:
    """Remove staging folders, and temporary files of config.pbtxt (`model_config.write_config`) and of the version
    record, left by deploys that were killed (their process is gone)."""
    for path in model_dir.glob(f"{STAGING_PREFIX}*"):
        if _writer_gone(path.name[len(STAGING_PREFIX) :]):
            shutil.rmtree(path, ignore_errors=True)
    for written in (
        CONFIG_NAME,
        VERSION_RECORD,
        ROLLED_BACK_RECORD,
    ):  # `.NAME.<pid>-<token>`: write_config's, write_atomic's
        for path in model_dir.glob(f".{written}.*"):
            if path.is_file() and _writer_gone(path.name[len(written) + 2 :]):
                path.unlink(missing_ok=True)


def _writer_gone(suffix: str) -> bool:
    """Whether the process that named a temporary `…<pid>-<token>` is gone (a name without a pid is not ours)."""
    pid = suffix.split("-")[0]
    return pid.isdigit() and not process_alive(int(pid))


def prepare_repository(repo: Path, strict: bool = True, loads_every_folder: bool = False) -> dict[str, str]:
    """Before a server starts: clear what killed deploys left, and find the model folders Triton cannot serve.

    Such a folder (no version, or a Python model's version without model.py: Triton would wait on it until its
    startup timeout and name none; no config.pbtxt: Triton would guess one and fail with an unrelated backend error;
    a config whose inputs or outputs are not its model's: loaded, every request would fail) is refused in one line
    naming them all when `strict` (a first start); else (a restart) they are returned, name → reason, for the caller
    to skip. A version folder Triton cannot read aborts the server whatever it was asked to load: where it
    `loads_every_folder` (poll or no model control), such a folder is refused even on a restart.
    """
    unservable: dict[str, str] = {}
    aborting: dict[str, str] = {}
    for model_dir in sorted(p for p in Path(repo).iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            with model_folder_lock(model_dir):
                remove_stale_staging(model_dir)
                if remove_if_empty(model_dir):  # only a dead first deploy's staging was in it
                    continue
                problem = unservable_because(model_dir) or missing_model_file(model_dir) or config_mismatch(model_dir)
        except FolderLockTimeout as exc:
            if strict:
                raise
            problem = f"still locked after {exc.waited_s:g} s by {exc.holder}"  # the other models serve meanwhile
        if problem:
            unservable[model_dir.name] = problem
        if problem and problem.endswith(MOVE_OUT):
            aborting[model_dir.name] = problem
    if (strict and unservable) or (loads_every_folder and aborting):
        raise QuantserveError(_refusal(Path(repo), unservable if strict else aborting))
    return unservable


def unservable_because(model_dir: Path) -> str | None:
    """Why Triton cannot serve this model folder as quantserve deploys it, or None. A version folder whose number
    Triton cannot read comes first: tritonserver aborts on it, taking every model down."""
    if problem := unreadable_versions_because(model_dir):
        return problem
    if not existing_versions(model_dir):
        return "has no version folder"
    if not (model_dir / CONFIG_NAME).is_file():
        return f"has no {CONFIG_NAME}"
    return pinned_missing_because(model_dir)


def _refusal(repo: Path, unservable: dict[str, str]) -> str:
    advised = all(
        reason.endswith((FIX, MOVE_OUT, RENAME, *MEND_LINKS)) for reason in unservable.values()
    )  # each says what to do already
    if len(unservable) == 1:
        name, reason = next(iter(unservable.items()))
        return f"{repo / name}: model '{name}' {reason}" + ("" if advised else "; deploy it or remove the folder")
    listed = ", ".join(f"model '{name}' {reason}" for name, reason in unservable.items())
    return f"{repo}: {listed}" + ("" if advised else "; deploy them or remove the folders")
