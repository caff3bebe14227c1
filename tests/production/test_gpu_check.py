"""scripts/gpu_check.sh: valid bash, valid embedded Python, and a clean one-line refusal without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from dockerfile_model import REPO

SCRIPT = REPO / "scripts" / "gpu_check.sh"


def test_bash_syntax() -> None:
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert os.access(SCRIPT, os.X_OK)


def test_embedded_benchmark_is_valid_python() -> None:
    text = SCRIPT.read_text()
    body = text.split("<<'PYEOF'\n", 1)[1].split("\nPYEOF\n", 1)[0]
    compile(body, "gpu_check.sh:benchmark", "exec")
    assert "gpu_benchmark.json" in body and all(p in body for p in ('"fp32"', '"fp16"', '"int8"'))


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU is present: the refusal path does not apply")
def test_refuses_cleanly_without_a_gpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "gpu_check: no NVIDIA GPU found (nvidia-smi missing or lists no GPU); nothing was run"
    assert done.stdout == "" and not out.exists()
