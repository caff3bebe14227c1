"""Answered rows of a load run's latency files by version, as the recording writes them: the s63 version-span and
swap-counter tests build the same runs."""

from __future__ import annotations

import numpy as np

from loadtest.recording_files import VERSION_COLUMN

SAMPLE_COLUMNS = VERSION_COLUMN + 2


def answers(runs: list[tuple[int, float, float, int]]) -> np.ndarray:
    """Answered rows: each run of (version, first, last, count) evenly spread, wall times from 100.0."""
    parts = []
    for version, first, last, count in runs:
        rows = np.zeros((count, SAMPLE_COLUMNS))
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, VERSION_COLUMN] = np.linspace(first, last, count), 2.0, 1, version
        parts.append(rows)
    return np.concatenate(parts)
