"""A latency record with more columns than this quantserve writes (a newer one's, mid-upgrade) is cut to
SAMPLE_COLUMNS beside an older, narrower one: the probe saw `np.concatenate` fail ("size 10 … size 9")."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.recording_files import SAMPLE_COLUMNS, read_latencies


def test_a_wider_record_is_cut_and_a_narrower_one_padded(tmp_path: Path) -> None:
    wider = np.arange(3 * (SAMPLE_COLUMNS + 2), dtype=float).reshape(3, SAMPLE_COLUMNS + 2)
    wider[:, 0] = [10.0, 11.0, 12.0]
    narrower = np.ones((2, SAMPLE_COLUMNS - 1))
    narrower[:, 0] = [10.5, 11.5]
    np.save(tmp_path / "latencies-1.npy", wider)
    np.save(tmp_path / "latencies-2.npy", narrower)
    rows = read_latencies(tmp_path, 0.0, 100.0)
    assert rows.shape == (5, SAMPLE_COLUMNS)
    assert sorted(rows[:, 0]) == [10.0, 10.5, 11.0, 11.5, 12.0]
    kept = rows[rows[:, 0] == 10.0][0]
    assert list(kept) == list(wider[0, :SAMPLE_COLUMNS])  # the columns this version knows, as written
    assert list(rows[rows[:, 0] == 10.5][0][-1:]) == [0.0]  # the column an older one did not record: 0
