"""The --data file as a load test's own process reads it: once, however many checks and steps ask for it.

One loadtest read a 64 MB file six times before its first request (0.12-0.18 s each on this machine): the check of
every step's settings (twice), the server check (twice), the run's identity (the arrays' sha256) and its step's
settings again. The arrays read are kept for the next asker while the file is unchanged (its size, modification
time, device and inode the same); one file at a time, so a process that loads several files holds one. Callers
read them, never write them. Locust's own processes read the file themselves (`loadtest.grpc_user`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from quantserve.artifact import TensorSpec
from quantserve.data import TensorData, load_npz, read_as_served


def read_data(path: Path | str) -> TensorData:
    """`load_npz(path)`, read once while the file is unchanged; a file that cannot be read is load_npz's own line."""
    try:
        stat = os.stat(path)
    except OSError:
        return load_npz(path, float_truth=True)  # its one line naming the file
    return _read(str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def served_data(path: Path | str, inputs: Sequence[TensorSpec], max_batch_size: int) -> TensorData:
    """`read_data(path)` as the served model takes it (`read_as_served`, evaluate's rule): each data[i] one whole
    request where the model does not batch and every array has one axis more than its input. A TensorData of its
    own over the read arrays, whose marks do not reach the next asker of the shared read."""
    data = read_data(path)
    return read_as_served(path, TensorData(data.arrays, data.labels, data.truth), inputs, max_batch_size)


@lru_cache(maxsize=1)
def _read(path: str, device: int, inode: int, size: int, mtime_ns: int) -> TensorData:
    """The file as it is now: another file at the path, or the file rewritten, is another key. The path as given,
    so that a line about the file names it as the user did. Float labels (a regressor's truth) are kept as truth:
    the load never scores them, and they were refused as "labels must be integer class ids" (session 41)."""
    return load_npz(path, float_truth=True)
