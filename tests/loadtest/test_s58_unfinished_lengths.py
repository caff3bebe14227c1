"""A step recovered from its raw records (killed before it wrote a results file, `unfinished_steps`) has its figures
per request length, as a finished step's (`step_result._summarize`): they were left out, though the records hold
each request's sent length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from loadtest.length_figures import length_figures
from loadtest.recording_files import LENGTH_COLUMN, SAMPLE_COLUMNS, WINDOW_FILE
from loadtest.unfinished_steps import unfinished_steps

START = 1_000.0


def _killed_step(results: Path, lengths: list[int], latencies_ms: list[float]) -> Path:
    """raw/m-u4 as a run killed in its window leaves it: the window and the answered requests, no results file."""
    record = results / "raw" / "m-u4"
    record.mkdir(parents=True)
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": START + 4.0, "planned_end": START + 4.0}))
    rows = np.zeros((len(lengths), SAMPLE_COLUMNS))
    rows[:, 0] = START + np.linspace(0.1, 3.9, len(lengths))
    rows[:, 1], rows[:, 2], rows[:, LENGTH_COLUMN] = latencies_ms, 1.0, lengths
    np.save(record / "latencies-1.npy", rows)
    return record


def test_an_unfinished_step_has_its_figures_per_length(tmp_path: Path) -> None:
    lengths = [32] * 60 + [1024] * 40
    latencies = [5.0] * 60 + [30.0] * 40
    _killed_step(tmp_path, lengths, latencies)
    [step] = unfinished_steps(tmp_path, [])
    assert step.requests == 100 and step.lengths is not None
    assert step.lengths.lengths == 2
    assert [(r.label, r.requests, r.share) for r in step.lengths.ranges] == [("32", 60, 0.6), ("1024", 40, 0.4)]
    assert [(r.p50_ms, r.p99_ms) for r in step.lengths.ranges] == [(5.0, 5.0), (30.0, 30.0)]
    rows = np.load(tmp_path / "raw" / "m-u4" / "latencies-1.npy")
    assert step.lengths == length_figures(rows)  # what a finished step of these records says


def test_an_unfinished_step_at_one_length_has_none(tmp_path: Path) -> None:
    _killed_step(tmp_path, [64] * 20, [4.0] * 20)
    [step] = unfinished_steps(tmp_path, [])
    assert step.requests == 20 and step.lengths is None
