"""`loadtest --shape`: a shape whose tick() raised mid-run did not run the planned load, so the run exits 1 with one
stderr line naming it (the figures so far and the note kept, the report written), as a step that measured nothing
does; a shape stopped at its cap (`--duration`, 1 h without it) ran as planned: noted, exit 0. The notes are the
ones `locustfile_user_shape.py` writes (pinned by `test_s27_user_shape.py`'s driver test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from loadtest.stage_figures import read_stage_starts, stage_figures, write_shape_end, write_stage_start
from quantserve.cli.commands.loadtest import failure_status

RAISED = "Late.tick() at 2 s raised RuntimeError: stage table ran out; the run ended there, with the figures so far"
CAP = "the shape's tick() had not returned None by its cap, 2 s (--duration; 1 h without it): the run stopped there"


def _shape_run(folder: Path, note: str) -> LoadRun:
    """Two stages of the user's shape (1 then 3 users), each answered, ended at 104 s with `note`; saved and loaded
    back as the report reads it."""
    for number, users, at in ((1, 1, 100.0), (2, 3, 102.0)):
        write_stage_start(folder, number, 0, users, 0.0, at)
    write_shape_end(folder, 104.0, note)
    rows = np.array([[101.0, 1.0, 1.0], [103.0, 2.0, 1.0]])
    stages = stage_figures(rows, 100.0, 104.0, read_stage_starts(folder))
    result = LoadResult("mlp", "127.0.0.1:1", "staged", 3, 4.0, 2, 0, 0.5, 0.5, LatencySummary.from_samples(rows[:, 1]))
    result.stages = stages
    LoadRun("mlp", [result]).save(folder)
    return LoadRun.load(folder / "load-mlp-staged.json")


@pytest.mark.parametrize("allowed", [False, True])
def test_a_tick_that_raised_mid_run_exits_1_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], allowed: bool
) -> None:
    run = _shape_run(tmp_path, RAISED)
    assert run.results[0].stages[-1].note == RAISED  # the note stays, for the report and the console
    assert failure_status([run], allowed) == 1
    assert capsys.readouterr().err == (
        "quantserve loadtest: mlp, stage 2/2: 3 users: Late.tick() at 2 s raised RuntimeError: stage table ran out: "
        "the planned load did not run to its end (notes above, report written); exit 1\n"
    )


def test_a_shape_stopped_at_its_cap_or_by_its_none_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder, note in ((tmp_path / "cap", CAP), (tmp_path / "none", "")):
        run = _shape_run(folder, note)
        assert run.results[0].stages[-1].note == note
        assert failure_status([run], allowed=False) == 0
    assert capsys.readouterr().err == ""
