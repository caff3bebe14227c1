"""Repository paths Triton's Python backend cannot start a model from, refused by `deploy` and `serve` up front.

The backend starts each model's stub as `bash -c " exec STUB REPO/NAME/1/model.py SHM …"` with the path unquoted
(python_backend's src/stub_launcher.cc): a space splits it, the stub reads a word of the path as a number (`stol`),
dies, and Triton waits on it until the startup timeout, naming nothing; quotes, `$`, a backslash and `;&|<>()` are
shell syntax, and `*?[{` expand to other folders. The stub's embedded Python reads file names as ASCII whatever the
locale (PYTHONUTF8=1 and LC_ALL=C.UTF-8 do not reach it), so a non-ASCII character fails the import of model.py.
Triton's C++ backends (onnxruntime, tensorrt) open the path as it is: only Python-backend models are refused.
"""

from __future__ import annotations

from pathlib import Path

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


def check_python_backend_repository(repo: Path) -> None:
    """Refuse `repo` for Python-backend models (the embedded target) if its full path holds a character that
    breaks their stub, in one line naming the path, the character and why."""
    resolved = Path(repo).resolve()  # what `serve` hands tritonserver: a link's target is what the stub gets
    problem = stub_path_problem(resolved)
    if problem is None:
        return
    shown = repr(str(repo)) + (f" (that is {str(resolved)!r})" if resolved != Path(repo).absolute() else "")
    raise QuantserveError(
        f"model repository {shown} cannot hold Python-backend models (the embedded target): its path has {problem}; "
        "use a path without it (onnxruntime and tensorrt models are not affected)"
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
    """Before tritonserver starts: refuse a repository whose path its Python-backend models cannot be started from."""
    if python_backend_models(repo):
        check_python_backend_repository(repo)
