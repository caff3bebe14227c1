"""Find the `tritonserver` binary, its backends and the environment it needs to run.

The binary comes from NVIDIA's NGC image (`tritonserver` on PATH, backends in
/opt/tritonserver/backends) or, without Docker, from the `nvidia-pytriton` wheel (Triton 2.51,
Python backend only), whose backends are copied beside the Python stub for the running interpreter.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.scratch import make_owned_dir, remove_stale_dirs
from quantserve.errors import QuantserveError

NGC_BACKENDS = Path("/opt/tritonserver/backends")
# + "<pid>-<random>": the folder of a serve killed by SIGKILL (2.8 MB, left forever before) is removed by the next one
SCRATCH_PREFIX = "quantserve-triton-"


@dataclass(frozen=True)
class TritonInstall:
    """Where the server binary and its backends live, and the environment it needs to run."""

    binary: Path
    backends: Path
    env: dict[str, str] = field(default_factory=dict)
    # A folder made for this server (the wheel's backends plus the Python stub); removed on stop.
    scratch: Path | None = None


def locate_tritonserver(scratch_parent: Path | None = None) -> TritonInstall:
    """The NGC image's `tritonserver` if on PATH, else the one inside the `nvidia-pytriton` wheel."""
    found = _found_server()
    if found is None:
        raise QuantserveError(
            "no tritonserver found: run inside NVIDIA's Triton image (tritonserver on PATH) "
            "or install the pinned nvidia-pytriton wheel (pip install -r requirements.lock)"
        )
    binary, backends, wheel = found
    return _wheel_install(binary.parent.parent, scratch_parent) if wheel else TritonInstall(binary, backends)


def _found_server() -> tuple[Path, Path, bool] | None:
    """The tritonserver binary to start, its backends folder and whether it is the wheel's; None where none is."""
    on_path = shutil.which("tritonserver")
    if on_path and NGC_BACKENDS.is_dir():
        return Path(on_path), NGC_BACKENDS, False
    wheel = _pytriton_server_dir()
    return None if wheel is None else (wheel / "bin" / "tritonserver", wheel / "backends", True)


def _pytriton_server_dir() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    server_dir = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    return server_dir if (server_dir / "bin" / "tritonserver").is_file() else None


def _wheel_install(server_dir: Path, scratch_parent: Path | None) -> TritonInstall:
    """Copy the wheel's backends beside the stub for this Python, since the backend looks for it there, into a
    scratch folder named for this process; first remove those whose process is gone (optimizer.scratch)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = server_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.is_file():
        raise QuantserveError(f"the nvidia-pytriton wheel has no Python backend stub for Python {version}")
    parent = scratch_parent or Path(tempfile.gettempdir())
    remove_stale_dirs(parent, (SCRATCH_PREFIX,))  # a live process's folder is kept, whoever's it is
    scratch = make_owned_dir(parent, SCRATCH_PREFIX)
    backends = scratch / "backends"
    try:
        _copy_backends(server_dir / "backends", stub, backends)
    except OSError as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise QuantserveError(f"cannot copy Triton's Python backend into {scratch}: {_copy_failure(exc)}") from None
    return TritonInstall(server_dir / "bin" / "tritonserver", backends, _wheel_env(server_dir), scratch)


def _copy_backends(source: Path, stub: Path, backends: Path) -> None:
    """Copy the wheel's backends and the stub; the first file that failed is raised as itself, not as the list of
    (source, destination, message) tuples that shutil.copytree gathers, printed raw under a file-size limit."""
    failed: list[OSError] = []

    def copy(src: str, dst: str) -> object:
        try:
            return shutil.copy2(src, dst)
        except OSError as exc:
            failed.append(exc)
            raise

    try:
        shutil.copytree(source, backends, ignore=shutil.ignore_patterns("__pycache__"), copy_function=copy)
    except shutil.Error:
        if failed:
            raise failed[0] from None
        raise
    shutil.copy2(stub, backends / "python" / "triton_python_backend_stub")


def _copy_failure(exc: OSError) -> str:
    """The reason a copy failed, in words; a file-size limit (`ulimit -f`) or a full disk said as such."""
    if exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return f"{exc.strerror} (a file-size limit or a full disk?)"
    return exc.strerror or str(exc)


def _wheel_env(server_dir: Path) -> dict[str, str]:
    # The stub links a libpython3.11; the running interpreter's own LIBDIR goes first so its patch
    # version matches the standard library it imports (a known pitfall: otherwise models fail to load with
    # "'_thread.RLock' object has no attribute '_recursion_count'").
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(server_dir.parent.parent / "nvidia_pytriton.libs")]
    existing = os.environ.get("LD_LIBRARY_PATH")
    return {
        "LD_LIBRARY_PATH": ":".join([p for p in libs if p] + ([existing] if existing else [])),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


# Triton's platform names -> the backend folder that runs them (a layout names one or the other)
PLATFORM_BACKENDS = {
    "onnxruntime_onnx": "onnxruntime",
    "tensorrt_plan": "tensorrt",
    "pytorch_libtorch": "pytorch",
    "tensorflow_savedmodel": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
}
MISSING_BACKEND = re.compile(r"unable to find backend library for backend '([A-Za-z0-9_]+)'")
WHAT_TO_DO = (
    "build it with --target embedded to serve it here, or run inside NVIDIA's Triton image (/opt/tritonserver/backends)"
)


def backend_of(runtime: dict[str, str]) -> str:
    """The backend a config's runtime (`{"backend": …}` or `{"platform": …}`) is run by."""
    if "backend" in runtime:
        return runtime["backend"]
    platform = runtime.get("platform", "")
    return PLATFORM_BACKENDS.get(platform, platform)


def located_backends() -> tuple[str, list[str]] | None:
    """The tritonserver `locate_tritonserver` would start, in words, and its backends; nothing copied. None where
    there is none (starting one says so)."""
    found = _found_server()
    if found is None:
        return None
    binary, backends, wheel = found
    return f"{binary} ({'nvidia-pytriton wheel' if wheel else 'NGC image'})", sorted(
        p.name for p in backends.iterdir() if p.is_dir()
    )


def check_backend(runtime: dict[str, str], what: str) -> None:
    """Refuse `what` (a build, a model) whose runtime needs a backend the tritonserver found here lacks: the
    nvidia-pytriton wheel has the Python backend alone, so an `onnxruntime_onnx` build failed at every load
    (session 45: `tune` ran each of its trials to "unable to find backend library for backend 'onnxruntime'")."""
    line = missing_backend(runtime, what)
    if line is not None:
        raise QuantserveError(line)


def missing_backend(runtime: dict[str, str], what: str) -> str | None:
    """The line saying `what` needs a backend the tritonserver found here lacks, or None where it has it (or where
    no tritonserver is found: starting one says so)."""
    located = located_backends()
    backend = backend_of(runtime)
    if located is None or backend in located[1]:
        return None
    server, backends = located
    platform = f" (platform {runtime['platform']})" if "platform" in runtime else ""
    return (
        f"{what} needs Triton's '{backend}' backend{platform}, but the tritonserver found here, {server}, has "
        f"only: {', '.join(backends) or 'none'}; {WHAT_TO_DO}"
    )


def explain_missing_backend(reason: str, install: TritonInstall) -> str:
    """Triton's "unable to find backend library" reason, with the backends this server has and what to do."""
    found = MISSING_BACKEND.search(reason)
    if found is None or not install.backends.is_dir():
        return reason
    backends = ", ".join(sorted(p.name for p in install.backends.iterdir() if p.is_dir())) or "none"
    needs = f"it needs Triton's '{found.group(1)}' backend, but {install.binary} has only: {backends}"
    return f"{needs}; {WHAT_TO_DO} (Triton: {reason})"
