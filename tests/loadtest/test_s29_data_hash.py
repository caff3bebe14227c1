"""A load run's data hash reads each array in place: the same digest as its bytes, without a second copy.

A 16 M-row `--data` file (512 MB) peaked at 1.1 GB in the CLI (session 29 probe): `arrays_sha256` hashed
`array.tobytes()`, a full copy of every array beside the loaded one.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from loadtest.run_identity import arrays_sha256
from quantserve.data import load_npz


def _as_before(path: Path) -> str:
    """The digest as it was computed before, from each array's `tobytes()`."""
    digest = hashlib.sha256()
    for name, array in sorted(load_npz(path).arrays.items()):
        array = np.ascontiguousarray(array)
        digest.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return f"sha256:{digest.hexdigest()}"


@pytest.mark.parametrize(
    "arrays",
    [
        {"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "ids": np.arange(4, dtype=np.int64).reshape(2, 2)},
        {"half": np.linspace(0, 1, 3, dtype=np.float16), "flag": np.array([True, False, True])},
        {"x": np.zeros((2, 0), np.float32), "labels": np.array([3, 1], np.uint8)},
        {"t": np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))},
    ],
)
def test_the_digest_is_the_arrays_bytes(arrays: dict[str, np.ndarray], tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    assert arrays_sha256(tmp_path / "d.npz") == _as_before(tmp_path / "d.npz")


def test_no_second_copy_of_the_data_is_made(tmp_path: Path) -> None:
    x = np.ones((1 << 20, 8), np.float32)  # 32 MB
    np.savez(tmp_path / "d.npz", x=x)
    tracemalloc.start()
    try:
        arrays_sha256(tmp_path / "d.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * x.nbytes, f"peak {peak / 2**20:.0f} MB for {x.nbytes / 2**20:.0f} MB of data"
