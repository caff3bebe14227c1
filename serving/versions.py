"""Model versions on disk: which one Triton serves, rolling back to the previous one, pruning old folders.

The served version is the config's `version_policy`: `latest { num_versions: N }` after a deploy,
`specific { versions: [V] }` after a rollback. Rolling back rewrites only `config.pbtxt`
(atomically), so the version folders stay untouched and the next deploy rolls forward again.
A rollback records the version it moved away from, and the default target (no --to) skips those: deploy 4,
roll back to 3, deploy 5, roll back, and 3 is served again, not 4 (session 45: the default returned to a version
rolled back from before, an INT8 build that had missed its drift budget). Serving a version with --to takes it off
the record. Old folders beyond `keep` are renamed to a hidden name (Triton ignores it) before removal, so a
half-deleted version never looks like a numbered one. Numbers only grow: the highest ever issued is recorded in
the model folder, so a version withdrawn or removed never has its number given to another model.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from quantserve.errors import QuantserveError
from quantserve.files import write_atomic
from serving.control import ControlClient
from serving.model_config import (
    CONFIG_NAME,
    MAX_VERSION,
    check_model_name,
    check_version_name,
    is_version_name,
    parse_config,
    write_config,
)
from serving.repository_lock import ROLLED_BACK_RECORD, VERSION_RECORD, model_folder_lock
from serving.version_folders import check_version_folders

PRUNE_PREFIX = ".pruned-"
DEPLOY_RECORD = "deploy.json"  # in each version folder: what deployed it, with the config it was deployed with


def existing_versions(model_dir: Path) -> list[int]:
    """The numbered version folders in `model_dir` (`is_version_name`), ascending."""
    return sorted(int(p.name) for p in Path(model_dir).iterdir() if p.is_dir() and is_version_name(p.name))


def check_version_numbers(model_dir: Path) -> None:
    """Before a deploy writes anything: refuse (one line) a model folder Triton cannot read as versions, a record of
    the highest version that is not a version, and a folder whose numbers are used up."""
    check_version_folders(model_dir)
    next_version(model_dir)


def next_version(model_dir: Path) -> int:
    """One above the highest number issued in `model_dir`: the record's, or its folders' where higher (a repository
    from before the record, a record damaged). Triton keeps no trace of a removed version folder, and a client or
    cache that saw version N must never get another model under N."""
    version = max(highest_issued(model_dir), *existing_versions(model_dir), 0) + 1
    if version > MAX_VERSION:
        raise QuantserveError(
            f"{model_dir}: version {MAX_VERSION}, the largest Triton can read, was issued: none is left"
        )
    return version


def highest_issued(model_dir: Path) -> int:
    """The version number recorded as the highest issued (0 with no readable record). A number Triton cannot read
    as a version (0, above 2**63−1) is refused in one line: a version folder named after it would abort Triton."""
    record = Path(model_dir) / VERSION_RECORD
    try:
        text = record.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return 0
    if not text.isdigit():
        return 0  # damaged: the folders decide
    if not is_version_name(text):
        raise QuantserveError(
            f"{record}: records version {text[:40]}{'…' if len(text) > 40 else ''} as issued, not a version Triton "
            f"can read (1 … {MAX_VERSION}); fix or remove the file (the version folders then decide)"
        )
    return int(text)


def record_issued(model_dir: Path, version: int) -> None:
    """Record `version` as issued (the caller holds the folder's lock and takes numbers upwards only)."""
    write_atomic(Path(model_dir) / VERSION_RECORD, f"{version}\n")


def rolled_back_from(model_dir: Path) -> list[int]:
    """The versions a rollback moved away from and no --to served since, ascending ([] with no readable record)."""
    try:
        words = (Path(model_dir) / ROLLED_BACK_RECORD).read_text().split()
    except (OSError, UnicodeDecodeError):
        return []
    return sorted({int(word) for word in words if is_version_name(word)})


def _record_rolled_back(model_dir: Path, left: list[int], target: int) -> None:
    """Add the versions a rollback left to the record and take its target off (the caller holds the lock)."""
    versions = (set(rolled_back_from(model_dir)) | set(left)) - {target}
    write_atomic(Path(model_dir) / ROLLED_BACK_RECORD, "".join(f"{v}\n" for v in sorted(versions)))


def restore_rolled_back(model_dir: Path, before: list[int]) -> None:
    """Put the record back as it was before a rollback whose config was put back (the version was never left)."""
    write_atomic(Path(model_dir) / ROLLED_BACK_RECORD, "".join(f"{v}\n" for v in before))


def skipped_note(before: list[int], after: list[int], target: int) -> str:
    """Words for the versions a default rollback passed over (rolled back from before), from the record `before` and
    `after` it: " (skipped version 4: rolled back from before; --to 4 serves it)", or ""."""
    left = max(set(after) - set(before), default=None)
    skipped = [v for v in before if target < v and (left is None or v < left)]
    if not skipped:
        return ""
    word = "version" if len(skipped) == 1 else "versions"
    return f" (skipped {word} {_listed(skipped)}: rolled back from before; --to {skipped[-1]} serves it)"


def served_versions(model_dir: Path) -> list[int]:
    """The versions the config's version policy makes live (of those on disk), ascending."""
    config = parse_config(Path(model_dir) / CONFIG_NAME)
    on_disk = existing_versions(model_dir)
    policy = config.get("version_policy", {})
    if "specific" in policy:
        wanted = {int(v) for v in policy["specific"].get("versions", [])}
        return [v for v in on_disk if v in wanted]
    if "all" in policy:
        return on_disk
    count = int(policy.get("latest", {}).get("num_versions", 1))
    return on_disk[-count:]


def pinned_versions_missing(model_dir: Path) -> list[int]:
    """The versions a `specific` version policy pins when none of them is on disk (else []): Triton would load
    nothing and, at a first start, wait its whole startup timeout naming neither model nor cause."""
    try:
        policy = parse_config(Path(model_dir) / CONFIG_NAME).get("version_policy", {})
    except QuantserveError:
        return []  # an unreadable config is named where Triton fails to load it
    pinned = sorted({int(v) for v in policy.get("specific", {}).get("versions", [])})
    return pinned if pinned and not set(pinned) & set(existing_versions(model_dir)) else []


def pinned_missing_because(model_dir: Path) -> str | None:
    """Why a model folder whose config pins only versions that are not on disk cannot serve, or None."""
    pinned = pinned_versions_missing(model_dir)
    if not pinned:
        return None
    model_dir, on_disk = Path(model_dir), existing_versions(model_dir)
    rollback = f"quantserve rollback --repo {model_dir.parent} --name {model_dir.name} --to {max(on_disk, default=0)}"
    advice = f"'{rollback}' serves one of them" if on_disk else "deploy it again"
    which = "which is not" if len(pinned) == 1 else "none of which is"
    return (
        f"pins version {_listed(pinned)} ({CONFIG_NAME} version_policy specific), {which} on disk "
        f"(versions on disk: {_listed(on_disk)}); {advice}"
    )


def model_dir_of(repo: Path | str, name: str) -> Path:
    """`repo/name`, checked: a valid name and an existing model folder with a config."""
    check_model_name(name)
    model_dir = Path(repo) / name
    if not (model_dir / CONFIG_NAME).is_file():
        raise QuantserveError(f"{model_dir}: no deployed model '{name}' (no {CONFIG_NAME})")
    return model_dir


def rollback(repo: Path | str, name: str, to: str | int | None = None, current: int | None = None) -> int:
    """Serve `to` (default: the newest version below the one served now) and only it; returns that version.

    `current` is the version a running server serves, when known: the config may name versions it failed to load.
    """
    with model_folder_lock(model_dir_of(repo, name)):
        return _rollback(repo, name, to, current)


def _rollback(repo: Path | str, name: str, to: str | int | None, current: int | None) -> int:
    model_dir = model_dir_of(repo, name)
    check_version_folders(model_dir)  # the config it writes would be loaded by a server that aborts on the folder
    on_disk = existing_versions(model_dir)
    if to is not None:
        target = check_version_name(to)
        if target not in on_disk:
            raise QuantserveError(f"{model_dir}: has no version {target} (versions: {_listed(on_disk)})")
        left = [current] if current is not None else _served_or_none(model_dir)
    else:
        if current is None and (problem := pinned_missing_because(model_dir)):
            raise QuantserveError(f"{model_dir}: model '{name}' {problem}")
        current = current if current is not None else max(served_versions(model_dir), default=0)
        older = [v for v in on_disk if v < current]
        skipped = set(rolled_back_from(model_dir))
        if not older:
            raise QuantserveError(f"{model_dir}: no version older than {current} to roll back to")
        if not [v for v in older if v not in skipped]:
            raise QuantserveError(
                f"{model_dir}: every version older than {current} ({_listed(older)}) was rolled back from before; "
                "name the one to serve with --to"
            )
        target = [v for v in older if v not in skipped][-1]
        left = [current]
    # The version's own config (its inputs, batching, instances), not the one a newer version brought: rolled back
    # under a newer version's config, a version whose input was 16 wide was served as 32 wide and every request
    # failed. A version without a readable record (hand-placed) keeps the config as it is.
    config = recorded_config(model_dir / str(target)) or _current_config_serving(model_dir, target)
    config["version_policy"] = {"specific": {"versions": [target]}}
    write_config(config, model_dir)
    _record_rolled_back(model_dir, [v for v in left if v > target], target)  # rolled back from, not forward
    return target


def _served_or_none(model_dir: Path) -> list[int]:
    """The versions the config serves now, or [] where it cannot be read (a --to then records nothing it left)."""
    try:
        return served_versions(model_dir)
    except QuantserveError:
        return []


def _current_config_serving(model_dir: Path, target: int) -> dict[str, Any]:
    """The config there now, for a version with no record of its own (placed by hand, an older deploy), checked
    against that version's model as `serve`'s watcher checks it: after an interface change, rollback said "now serves
    version 1" under version 2's config, Triton loaded it, and every request failed ("Invalid output name"), while
    the watcher refused the same config (session 40)."""
    from serving.config_fit import version_mismatch

    config = parse_config(model_dir / CONFIG_NAME)
    problem = version_mismatch(config, model_dir, target)
    if problem:
        raise QuantserveError(
            f"{model_dir}: version {target} has no record of its own config ({target}/{DEPLOY_RECORD}: placed by hand "
            f"or by an older deploy), and the {CONFIG_NAME} there now does not fit it: {problem}; nothing rolled back: "
            "deploy its build again to serve it"
        )
    return config


def rollback_live(repo: Path | str, name: str, control: ControlClient, to: str | int | None = None) -> int:
    """`rollback` on a running server: from the newest version it serves, confirmed loaded before returning.

    If the server does not load the version, the config is put back, so the repository says what it serves.
    """
    model_dir = model_dir_of(repo, name)
    served = control.ready_versions(name)
    if not served and to is None:
        raise QuantserveError(f"{control.url}: '{name}' serves no version now; name the one to serve with --to")
    config_path = model_dir / CONFIG_NAME
    with model_folder_lock(model_dir):
        previous, before = config_path.read_bytes(), rolled_back_from(model_dir)
        target = _rollback(repo, name, to, current=max(served, default=None))
        written = config_path.read_bytes()
    try:
        control.load(name)
        control.wait_versions(name, [target])
    except QuantserveError as exc:
        restore_rolled_back(model_dir, before)
        raise QuantserveError(f"{exc}; {put_back(config_path, previous, written)}") from exc
    return target


def put_back(config_path: Path, previous: bytes | None, written: bytes) -> str:
    """Put back the config a rollback replaced, where it is still the one the rollback wrote (a deploy since wrote
    a newer one: that one stays); the words for it."""
    with model_folder_lock(config_path.parent):
        ours = config_path.is_file() and config_path.read_bytes() == written
        if ours:
            restore_config(config_path, previous)
    done = "put back" if ours else "kept (changed since the rollback wrote it)"
    return f"{config_path} {done}, the server keeps what it served"


def prune_versions(model_dir: Path, keep: int) -> list[int]:
    """Remove all but the newest `keep` version folders (0: keep all); returns the versions removed."""
    if keep < 0:
        raise QuantserveError(f"--keep-versions must be ≥ 0, got {keep}")
    with model_folder_lock(model_dir):
        versions = existing_versions(model_dir)
        doomed = versions[:-keep] if keep and len(versions) > keep else []
        for version in doomed:
            remove_version_folder(model_dir, version)
    return doomed


def remove_version_folder(model_dir: Path, version: int) -> None:
    """Rename the version folder to a hidden name (atomic: the number disappears at once), then delete it."""
    hidden = Path(model_dir) / f"{PRUNE_PREFIX}{os.getpid()}-{time.monotonic_ns()}-{version}"
    os.rename(Path(model_dir) / str(version), hidden)
    shutil.rmtree(hidden, ignore_errors=True)


def remove_stale_pruned(model_dir: Path) -> None:
    """Finish removals a killed prune left behind (hidden folders Triton never reads)."""
    for path in Path(model_dir).glob(f"{PRUNE_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def restore_config(path: Path, previous: bytes | None) -> None:
    """Put back the config bytes a failed deploy or rollback replaced (atomically), or remove the one it created."""
    if previous is None:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, previous)


def _listed(versions: list[int]) -> str:
    return ", ".join(map(str, versions)) or "none"


def recorded_config(version_dir: Path) -> dict[str, Any] | None:
    """The config a version was deployed with (its deploy record), or None."""
    try:
        config = json.loads((version_dir / DEPLOY_RECORD).read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return None
    return config if isinstance(config, dict) else None
