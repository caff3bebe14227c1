"""A regressor's data file (float `labels`, its truth) is read by the commands that never score labels (session 41:
`infer` and `loadtest` refused it as "labels must be integer class ids", while `evaluate --metric` took it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.data_file import read_data


def test_float_labels_are_kept_as_truth_by_the_load(tmp_path: Path) -> None:
    path = tmp_path / "reg.npz"
    np.savez(path, x=np.ones((6, 2), np.float32), labels=np.linspace(0.0, 1.0, 6))
    data = read_data(path)
    assert data.labels is None and data.truth is not None and len(data) == 6
