"""A model loaded over the server's URL by a command (`deploy --url`), told to the `quantserve serve` watching the
repository, so that its watcher does not load the same change again.

Measured (session 63): one `deploy --url` against a running serve made tritonserver load the new version three times
("loading: m:7" ×3, the live instance unloaded twice for nothing, each a model-process start): deploy's own load,
the watcher loading the same files again, and once more for the old version folder deploy pruned afterwards. The
command writes a note in the runtime folder (serving.endpoints) before it writes anything into the model folder, and
with it the model folder's fingerprint just before it asks Triton to load it; the watcher waits while that load runs
and takes the fingerprint as loaded once it is done. A note of a command that died or hung past UNTIL_S is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quantserve.files import write_atomic
from serving.endpoints import runtime_dir
from serving.model_files import ModelPrint, model_fingerprints, versions_removed_only

NOTE_PREFIX = "url-load-"
UNTIL_S = 300.0  # longer than a --url command waits for its load (120 s for the call, 60 s for the versions)


def note_path(model_dir: Path) -> Path:
    key = hashlib.sha256(str(Path(model_dir).resolve()).encode()).hexdigest()[:20]
    return runtime_dir() / f"{NOTE_PREFIX}{key}.json"


@contextmanager
def loading_over_url(model_dir: Path) -> Iterator[None]:
    """Around a command's writes and its load of `model_dir` over the URL: the watcher waits meanwhile. The note is
    marked done at the end; where the command failed, with nothing loaded, so the watcher loads what it sees."""
    _write(model_dir, {"pid": os.getpid(), "at": time.time(), "print": None, "done": False})
    try:
        yield
    except BaseException:  # the load failed (withdrawn) or was cut short: the watcher loads what it sees
        _mark_done(model_dir, loaded=False)
        raise
    _mark_done(model_dir, loaded=True)


def _mark_done(model_dir: Path, loaded: bool) -> None:
    note = _read(model_dir)
    if note is not None and note.get("pid") == os.getpid():
        _write(model_dir, {**note, "done": True, **({} if loaded else {"print": None})})


def about_to_load(model_dir: Path) -> None:
    """Record the model folder as it is now, just before the command asks Triton to load it: Triton reads it after
    this, so whatever this fingerprint holds is what it loads (a change made later differs from it, and is loaded)."""
    note = _read(model_dir)
    if note is None or note.get("pid") != os.getpid():
        return
    try:
        current = model_fingerprints(Path(model_dir).parent).get(Path(model_dir).name)
    except OSError:  # read as Triton reads it, or not at all: the watcher then loads what it sees
        current = None
    _write(model_dir, {**note, "print": _as_json(current) if current else None})


def loaded_over_url(model_dir: Path) -> ModelPrint | bool | None:
    """True while a command's load over the URL of `model_dir` runs; the fingerprint it loaded once it is done;
    None where there is no such note, or it is stale (the command gone, or past UNTIL_S)."""
    note = _read(model_dir)
    if note is None or time.time() - float(note.get("at", 0)) > UNTIL_S:
        return None
    if not note.get("done"):
        return True if _alive(int(note.get("pid", 0))) else None
    loaded = note.get("print")
    return _from_json(loaded) if loaded else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return pid > 0


def _write(model_dir: Path, note: dict[str, Any]) -> None:
    """Write the note; where the runtime folder cannot be written, none (the watcher loads the change again)."""
    path = note_path(model_dir)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(note))


def _read(model_dir: Path) -> dict[str, Any] | None:
    try:
        note = json.loads(note_path(model_dir).read_text())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) else None


def _as_json(fingerprint: ModelPrint) -> dict[str, Any]:
    return {
        "config": list(fingerprint.config),
        "versions": [[v, [list(f) for f in files]] for v, files in fingerprint.versions],
    }


def _from_json(data: Any) -> ModelPrint | None:
    try:
        config = tuple(data["config"])
        versions = tuple(
            (str(v), tuple((str(n), int(s), int(m)) for n, s, m in files)) for v, files in data["versions"]
        )
        return ModelPrint((int(config[0]), int(config[1])), versions)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def sort_changes(
    repo: Path,
    changed: list[str],
    before: dict[str, ModelPrint],
    current: dict[str, ModelPrint],
    served: Callable[[str], list[int]],
) -> tuple[list[str], list[str], list[str]]:
    """The watcher's `changed` models in three: to load; to wait for (a command loads it over the URL now); and those
    whose change is loaded already (by such a command, or a folder only of versions not served removed).
    `served(name)`: the versions Triton serves now."""
    to_load, waiting, loaded = [], [], []
    for name in changed:
        by_url = loaded_over_url(Path(repo) / name)
        if by_url is True:
            waiting.append(name)
            continue
        baseline = by_url if isinstance(by_url, ModelPrint) else before.get(name)
        removed = versions_removed_only(baseline, current[name])
        if baseline == current[name] or (removed is not None and not removed & {str(v) for v in served(name)}):
            loaded.append(name)
        else:
            to_load.append(name)
    return to_load, waiting, loaded


def superseded_line(version: int, served: list[int]) -> str:
    """Empty where the server serves `version`; else what serves in its place. Two `deploy --url` of one model at
    once: each printed "live on …" and "deployed … version 18", exit 0, while the server served only version 19, the
    other deploy's build, as the config's newest-version policy asks (session 52)."""
    if version in served:
        return ""
    newer = [v for v in served if v > version]
    instead = f"version {', '.join(map(str, newer))}, deployed meanwhile," if newer else "no version of it"
    return (
        f"version {version} is not served: the server serves {instead} in its place (the config's version policy "
        "names which); load-test or evaluate that version knowing which build it is"
    )
