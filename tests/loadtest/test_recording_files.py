"""Reading back what the Locust processes recorded, from files written the way they write them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest import recording_files


def test_unsent_arrivals_are_counted_up_to_the_window_end_from_every_process(tmp_path: Path) -> None:
    """Each process notes its backlog at the stop as (arrival wall time, samples); arrivals due after the window's
    end are not the window's, nor those due in its last quarter second (on their way to a free slot at the stop)."""
    np.save(tmp_path / "unsent-1.npy", np.array([[90.0, 1.0], [99.5, 1.0], [99.9, 1.0], [100.5, 1.0]]))
    np.save(tmp_path / "unsent-2.npy", np.array([[95.0, 16.0]]))
    assert recording_files.read_unsent(tmp_path, end=100.0) == 3
    assert recording_files.read_unsent(tmp_path / "none", end=100.0) == 0
