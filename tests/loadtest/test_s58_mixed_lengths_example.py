"""examples/mixed_lengths.py, the per-length figures' re-measure: its data must be what the deployed model takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from examples.mixed_lengths import LONG, SHORT, write
from loadtest.request_data import padding_input
from quantserve.data import load_npz


def test_the_example_writes_data_the_model_takes_at_two_lengths(tmp_path: Path) -> None:
    write(tmp_path)
    mixed, short = load_npz(tmp_path / "mixed.npz"), load_npz(tmp_path / "short.npz")
    # float64 rows were refused by loadtest ("input 'x' has dtype float64, the model expects float32")
    assert mixed.arrays["x"].dtype == np.float32 and mixed.arrays["mask"].dtype == np.int64
    assert sorted(set(mixed.arrays["mask"].sum(axis=1).tolist())) == [SHORT, LONG]
    assert set(short.arrays["mask"].sum(axis=1).tolist()) == {SHORT}
    found = padding_input(mixed.arrays)
    assert found is not None and found.name == "mask"
    assert (tmp_path / "repo" / "seq" / "1" / "model.onnx").exists()
