"""A data file too big for memory is one line naming it, its size and rows, and what to do (issue 11: 4M rows of 32
float32 under `ulimit -v 1400000` ended in numpy's `_ArrayMemoryError` traceback); the finiteness check looks at a
slice at a time, so it no longer needs half the file's memory again."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from quantserve import finite_data
from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, check_against, load_npz
from quantserve.errors import QuantserveError

SPEC = [TensorSpec("x", "float32", ("batch", 32))]

LOAD_UNDER_LIMIT = """
import resource, sys
from quantserve.data import load_npz
from quantserve.artifact import TensorSpec
from quantserve.errors import QuantserveError
vm = int(next(line for line in open("/proc/self/status") if line.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 40 * 2**20, resource.RLIM_INFINITY))
try:
    load_npz(sys.argv[1], [TensorSpec("x", "float32", ("batch", 32))])
except QuantserveError as exc:
    print(f"error: {exc}")
"""


def test_a_file_bigger_than_memory_is_one_line_naming_its_size_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    np.savez_compressed(path, x=np.zeros((1_000_000, 32), np.float32))  # 122 MiB in memory, 120 KiB on disk
    script = tmp_path / "load.py"
    script.write_text(textwrap.dedent(LOAD_UNDER_LIMIT))
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.startswith(f"error: {path}: too big for this process's memory ("), done.stdout
    assert "122.1 MiB in memory: 1000000 rows; 'x' float32[1000000, 32]); save fewer rows" in done.stdout


def test_the_finiteness_check_holds_a_slice_not_a_mask_of_the_whole_input() -> None:
    rows = np.ones((250_000, 32), np.float32)  # 30.5 MiB: a whole-array mask and its negation took 15 MiB
    tracemalloc.start()
    try:
        check_against("f.npz", TensorData({"x": rows}), SPEC)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB held to check {rows.nbytes / 2**20:.1f} MiB"


def test_non_finite_values_are_counted_across_slices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(finite_data, "FINITE_CHECK_BYTES", 3 * 32 * 4)  # 3 rows a slice
    x = np.zeros((10, 32), np.float32)
    x[4, 1], x[4, 2], x[9, 0] = np.nan, np.inf, -np.inf
    np.savez(tmp_path / "d.npz", x=x)
    with pytest.raises(QuantserveError) as refused:
        load_npz(tmp_path / "d.npz", SPEC)
    assert str(refused.value).endswith(
        "input 'x' has 3 NaN or infinite value(s), in 2 row(s) (first: row 4); inputs must be finite"
    )
