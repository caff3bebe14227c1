"""Every module imports, and every `--help` runs, where torch, tensorrt and pynvml are absent.

Serving and load testing must work in an image without torch (Polygraphy's test_dependencies idea):
the check runs in a child interpreter whose import system refuses the heavy packages.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from quantserve.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("quantserve", "optimizer", "serving", "loadtest")
BLOCKER = """
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "tensorrt", "pynvml"):
            raise ImportError(f"{name} is blocked for this test")
sys.meta_path.insert(0, Refuse())
"""


def all_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            # __main__ runs the CLI; tensorrt_build runs only in the TensorRT child process
            if not info.name.endswith(("__main__", "tensorrt_build")):
                names.append(info.name)
    return names


def run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_every_module_imports_without_torch() -> None:
    modules = all_modules()
    assert "serving.server" in modules and "loadtest.harness" in modules
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "assert 'torch' not in sys.modules\n"
    result = run_blocked(code)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_runs_without_torch(command: str | None) -> None:
    argv = [command, "--help"] if command else ["--help"]
    result = run_blocked(f"from quantserve.cli import main\nsys.argv = ['quantserve']\nmain({argv!r})")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage: quantserve" in result.stdout


def test_every_registered_command_has_a_module() -> None:
    for command in COMMANDS:
        assert (ROOT / "quantserve" / "cli" / "commands" / f"{command}.py").is_file(), command
