"""Find the `tritonserver` binary, its backends and the environment it needs to run.

The binary comes from NVIDIA's NGC image (`tritonserver` on PATH, backends in
/opt/tritonserver/backends) or, without Docker, from the `nvidia-pytriton` wheel (Triton 2.51,
Python backend only), whose backends are copied beside the Python stub for the running interpreter.
"""

from __future__ import annotations

import importlib.util
import os
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
    on_path = shutil.which("tritonserver")
    if on_path and NGC_BACKENDS.is_dir():
        return TritonInstall(Path(on_path), NGC_BACKENDS)
    wheel = _pytriton_server_dir()
    if wheel is None:
        raise QuantserveError(
            "no tritonserver found: run inside NVIDIA's Triton image (tritonserver on PATH) "
            "or install the pinned nvidia-pytriton wheel (pip install -r requirements.lock)"
        )
    return _wheel_install(wheel, scratch_parent)


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
    shutil.copytree(server_dir / "backends", backends, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(stub, backends / "python" / "triton_python_backend_stub")
    return TritonInstall(server_dir / "bin" / "tritonserver", backends, _wheel_env(server_dir), scratch)


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
