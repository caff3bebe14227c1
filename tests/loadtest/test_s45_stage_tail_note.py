"""A stage's p99 resting on few requests is noted as the whole window's is (session 45: `--shape` of 4, 0 and 4
users showed the 0-user stage's p99 of 1.33 ms, from the 4 requests answered after its switch, with no word), in the
console's notes and the report's "Tail" lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import step_lines
from loadtest.results import LoadResult
from loadtest.stage_figures import read_stage_starts, stage_figures, write_shape_end, write_stage_start


def test_a_stage_whose_p99_rests_on_few_requests_is_noted(tmp_path: Path) -> None:
    for number, users, at in ((1, 4, 100.0), (2, 0, 102.0), (3, 4, 104.0)):
        write_stage_start(tmp_path, number, 0, users, 0.0, at)
    write_shape_end(tmp_path, 106.0, "")
    ends = np.concatenate(
        [np.linspace(100.01, 101.99, 150), np.linspace(102.01, 102.04, 4), np.linspace(104.01, 105.99, 150)]
    )
    rows = np.column_stack([ends, np.full(len(ends), 1.0), np.ones(len(ends))])
    result = LoadResult(
        "mlp", "127.0.0.1:1", "staged", 4, 6.0, len(rows), 0, 50.0, 50.0, LatencySummary.from_samples(rows[:, 1])
    )
    result.stages = stage_figures(rows, 100.0, 106.0, read_stage_starts(tmp_path))
    assert [stage.requests for stage in result.stages] == [150, 4, 150]
    LoadRun("mlp", [result]).save(tmp_path)
    loaded = LoadRun.load(tmp_path / "load-mlp-staged.json")
    said = (
        "mlp staged, stage 2/3: 0 users: p99 rests on 4 successful requests: it is interpolated between their two "
        "slowest, not a tail (that takes 100 or more); run longer (--duration) for a tail figure"
    )
    assert [note for note in loaded.results[0].notes() if "rests on" in note] == [said]
    assert [(kind, note) for kind, note in step_lines([loaded]) if kind == "Tail"] == [("Tail", said)]
