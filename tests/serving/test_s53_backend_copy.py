"""Triton's Python backend that cannot be copied (a file-size limit, a full disk) is one line (session 53).

`serve` under `ulimit -f 4` printed shutil.copytree's list of (source, destination, "[Errno 27] File too large …")
tuples as its error, raw. Now it names the folder and the reason, and the scratch folder goes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Under a 4 KiB file-size limit (Python ignores SIGXFSZ, so the write fails with EFBIG), as `ulimit -f 4` set it.
LIMITED = """
import resource, sys
from pathlib import Path
from quantserve.errors import QuantserveError
from serving.triton_install import _wheel_install
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    _wheel_install(Path(sys.argv[1]), Path(sys.argv[2]))
except QuantserveError as exc:
    print(exc)
"""


def fake_wheel(server_dir: Path) -> None:
    """The wheel's layout as `_wheel_install` reads it: backends (one file over the limit) and this Python's stub."""
    python = server_dir / "backends" / "python"
    python.mkdir(parents=True)
    (python / "libtriton_python.so").write_bytes(b"\0" * 1024)
    (python / "triton_python_backend_utils.py").write_bytes(b"#" * 16384)
    stub = server_dir / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}"
    stub.mkdir(parents=True)
    (stub / "triton_python_backend_stub").write_bytes(b"\0" * 1024)


def test_a_copy_over_the_file_size_limit_is_one_line_and_leaves_no_scratch(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "tritonserver")
    parent = tmp_path / "scratch"
    args = [sys.executable, "-c", LIMITED, str(tmp_path / "tritonserver"), str(parent)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert list(parent.iterdir()) == []  # the scratch folder removed
    line = done.stdout.strip()
    assert line.startswith("cannot copy Triton's Python backend into " + str(parent / "quantserve-triton-")), line
    assert line.endswith(": File too large (a file-size limit or a full disk?)"), line
    assert "\n" not in line and "Errno" not in line
