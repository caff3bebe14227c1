"""Repository paths Triton's Python backend cannot start a model from, and the plainly named link `serve` hands
tritonserver in their place.

The backend starts each model's stub as `bash -c " exec STUB REPO/NAME/1/model.py SHM …"` with the path unquoted
(python_backend's src/stub_launcher.cc): a space splits it, the stub reads a word of the path as a number (`stol`),
dies, and Triton waits on it until the startup timeout, naming nothing; quotes, `$`, a backslash and `;&|<>()` are
shell syntax, and `*?[{` expand to other folders. The stub's embedded Python reads file names as ASCII whatever the
locale (PYTHONUTF8=1 and LC_ALL=C.UTF-8 do not reach it), so a non-ASCII character fails the import of model.py.
Triton's C++ backends (onnxruntime, tensorrt) open the path as it is.

Only the string the stub is given matters, not the folder it names: served as `/tmp/quantserve-repo-<pid>-<x>/repo`,
a symlink to `re po` or `repo_ü`, the embedded model loaded and answered as from a plain path (model.py opens
`args['model_repository']`, the link path). So `deploy` writes to any path, and `serve` links such a repository
from a private folder in the temp folder (or /tmp, if that is odd too) for as long as tritonserver runs; only
where neither is plain are Python-backend models refused, in one line, as before.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from optimizer.scratch import make_owned_dir, remove_stale_dirs
from quantserve.errors import QuantserveError
from serving.model_config import CONFIG_NAME, MODEL_NAME, parse_config

# Characters bash gives a meaning in the stub's command line: what each is called, and what bash does with it.
SPLITS = "splits the path"
SYNTAX = "is shell syntax"
EXPANDS = "expands into other paths"
SHELL_CHARACTERS = {
    " ": ("a space", SPLITS),
    "\t": ("a tab", SPLITS),
    "\n": ("a newline", "ends the command"),
    "'": ("a quote", SYNTAX),
    '"': ("a quote", SYNTAX),
    "`": ("a backquote", SYNTAX),
    "\\": ("a backslash", SYNTAX),
    **dict.fromkeys(";&|<>()", ("shell syntax", SYNTAX)),
    "$": ("a dollar sign", "expands as a variable"),
    **dict.fromkeys("*?[", ("a wildcard", EXPANDS)),
    "{": ("a brace", EXPANDS),
}
LINK_PREFIX = "quantserve-repo-"  # + "<pid>-<random>": a killed serve's folder is removed by the next one
LINK_NAME = "repo"
FALLBACK_PARENT = Path("/tmp")  # where the link goes when the temp folder's own path is odd


def stub_path_problem(path: Path) -> str | None:
    """Why the Python backend cannot start a stub from `path` (absolute, as Triton sees it), or None."""
    for char in str(path):
        if not char.isascii():
            return (
                f"the non-ASCII character {char!r}, which the stub's embedded Python cannot encode (it reads file "
                "names as ASCII whatever the locale)"
            )
        if char in SHELL_CHARACTERS:
            name, effect = SHELL_CHARACTERS[char]
            return f"{name} ({char!r}), which {effect} where Triton starts the model's stub (a shell, path unquoted)"
    return None


def plain_temp_parent() -> Path | None:
    """A folder to make a plainly named link or scratch folder in: the temp folder, else /tmp, else None."""
    for parent in (Path(tempfile.gettempdir()).absolute(), FALLBACK_PARENT):
        if stub_path_problem(parent) is None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return parent
    return None


@dataclass(frozen=True)
class RepositoryLink:
    """A symlink with a plain path to a repository whose own path the Python backend's stub cannot start from."""

    link: Path
    target: Path
    problem: str  # what is wrong with the target's path, as `stub_path_problem` says it

    def line(self) -> str:
        """What `serve` did, in one line."""
        return f"model repository path has {self.problem}: served through {self.link} → {self.target}"

    def remove(self) -> None:
        """Remove the link and its private folder (never what it points to)."""
        self.link.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.link.parent.rmdir()


def link_for_stub(repo: Path) -> RepositoryLink | None:
    """A `RepositoryLink` to `repo` if its full path (links resolved) is one the stub cannot start from, else None
    (serve it as it is). With no plain folder to link from, Python-backend models are refused as before."""
    target = Path(repo).resolve()
    problem = stub_path_problem(target)
    if problem is None:
        return None
    parent = plain_temp_parent()
    if parent is None:
        check_repository_serves_its_models(repo)
        return None  # onnxruntime and tensorrt models open any path
    remove_stale_dirs(parent, (LINK_PREFIX,))
    folder = make_owned_dir(parent, LINK_PREFIX)
    (folder / LINK_NAME).symlink_to(target, target_is_directory=True)
    return RepositoryLink(folder / LINK_NAME, target, problem)


def check_python_backend_repository(repo: Path) -> None:
    """Refuse `repo` for Python-backend models (the embedded target) if its full path holds a character that
    breaks their stub, in one line naming the path, the character and why."""
    resolved = Path(repo).resolve()  # a link's target is what the stub would get
    problem = stub_path_problem(resolved)
    if problem is None:
        return
    shown = repr(str(repo)) + (f" (that is {str(resolved)!r})" if resolved != Path(repo).absolute() else "")
    temp = str(Path(tempfile.gettempdir()).absolute())
    raise QuantserveError(
        f"model repository {shown} cannot hold Python-backend models (the embedded target): its path has {problem}, "
        f"and neither the temp folder {temp!r} nor {str(FALLBACK_PARENT)!r} is a plain, writable folder to serve it "
        "through a link from; set TMPDIR to one, or use a path without it (onnxruntime and tensorrt models are not "
        "affected)"
    )


def python_backend_models(repo: Path) -> list[str]:
    """The model folders in `repo` whose config.pbtxt names the Python backend (unreadable ones are not ours to
    judge here: `serve` names them apart)."""
    names = []
    for config in sorted(Path(repo).glob(f"*/{CONFIG_NAME}")):
        if not MODEL_NAME.fullmatch(config.parent.name):
            continue
        try:
            backend = parse_config(config).get("backend")
        except QuantserveError:
            continue
        if backend == "python":
            names.append(config.parent.name)
    return names


def check_repository_serves_its_models(repo: Path) -> None:
    """Refuse a repository whose path its Python-backend models cannot be started from (no link possible)."""
    if python_backend_models(repo):
        check_python_backend_repository(repo)
