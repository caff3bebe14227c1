"""Leftovers of a load run cut by its model's going away (probe pl9): a `--shape` run cut by an unload showed its
stages as "1/2, 2/2", the last "0.1 of 0" s, beside a note blaming the shape's own clock; a `--stages` run cut in
its first stage was labelled "up to 8 users"; and the failures answered after the verdict were counted ("3 of 13515
requests failed") but missing from Locust's failure table, its `_failures.csv` empty."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from loadtest.model_gone import ModelGone, cut_short
from loadtest.percentiles import LatencySummary
from loadtest.report_lines import stage_cells
from loadtest.results import LoadResult
from loadtest.stage_figures import StageFigures, read_stage_starts, stage_figures, write_stage_start
from loadtest.user_shape import ShapePlan, UserShape

START = 1_796_170_620.0


def _cut_shape_stages(tmp_path: Path) -> list[StageFigures]:
    """Stages of 2 and 6 users started by the user's shape (planned 2/6/2, 6 s each), the run cut 0.1 s into the
    second by the model's going away: no `shape_end.json`, as in the probe's h1."""
    write_stage_start(tmp_path, 1, 0, 2, 0.0, START)
    write_stage_start(tmp_path, 2, 0, 6, 0.0, START + 6.0)
    samples = np.array([[START + 1.0, 2.0, 1.0], [START + 5.0, 2.0, 1.0], [START + 6.05, 2.0, 0.0]])
    return stage_figures(samples, START, START + 6.1, read_stage_starts(tmp_path))


def test_a_shape_cut_from_outside_shows_its_planned_stages_not_its_own_end(tmp_path: Path) -> None:
    shape = UserShape("spike.py")
    shape.__dict__["plan"] = ShapePlan("Spike", ((2, 6.0), (6, 6.0), (2, 6.0)), True)
    stages = _cut_shape_stages(tmp_path)
    assert shape.as_ran(stages) == 6
    assert [stage_cells(stage)[:3] for stage in stages] == [["1/3", "2", "6.0 of 6"], ["2/3", "6", "0.1 of 6"]]
    assert stages[-1].note == (
        "the run was stopped in this stage, by what the notes above say, not by the shape: the stage of 2 users its "
        "dry run planned never ran"
    )
    assert stages[-1].cut_short == ""  # the model-gone line is the run's exit 1, not the shape's
    latency = LatencySummary.from_samples(np.ones(2))
    result = LoadResult("e4", "127.0.0.1:1", "staged", 6, 6.1, 3, 1, 0.3, 0.3, latency, stages=stages)
    cut = cut_short(result, ModelGone("e4", "", 6.1, 2, "NOT_FOUND"), 3600.0)
    assert not any("dry run planned ran; the shape ended" in note for note in cut.notes())
    assert cut.notes()[0].startswith("e4 staged, all stages together (up to 6 users): model 'e4' stopped")


def test_a_stages_run_cut_in_its_first_stage_is_labelled_with_the_users_it_reached() -> None:
    latency = LatencySummary.from_samples(np.ones(3))
    first = StageFigures(1, 3, 2, 8.0, 0.0, 4.0, 3, 0, 0.75, latency)
    result = LoadResult("d1", "127.0.0.1:1", "staged", 8, 4.0, 3, 0, 0.75, 0.75, latency, stages=[first])
    assert result.label == "d1 staged, all stages together (up to 2 users)"
    result.stages = []  # an older file, or no stage recorded: the users it was run with
    assert result.label == "d1 staged, all stages together (up to 8 users)"


FAILURES_CHILD = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace

    import gevent
    import loadtest.grpc_user as users
    from locust import events
    from locust.env import Environment
    from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

    prefix = sys.argv[1]
    environment = Environment(events=events, parsed_options=SimpleNamespace(csv_prefix=prefix))
    getattr(users, "_environment", [])[:] = [environment]  # as its init listener keeps it
    writer = StatsCSVFileWriter(environment, PERCENTILES_TO_REPORT, prefix, False)
    gevent.spawn(writer.stats_writer)
    gevent.sleep(0)  # its first write: the table's header, no failure yet
    said = "TritonRequestFailed(\\"[StatusCode.NOT_FOUND] Request for unknown model: 'd1' has no available versions\\")"
    for _ in range(3):  # answered after the verdict, within the writer's second
        environment.stats.log_error("grpc", "d1", said)
    environment.events.quit.fire(exit_code=1)  # then Locust's shutdown closes the files, as main.shutdown does
    writer.close_files()
    """
)


def test_failures_of_the_last_second_are_in_locusts_failure_table(tmp_path: Path) -> None:
    prefix = tmp_path / "d1-u4"
    subprocess.run([sys.executable, "-c", FAILURES_CHILD, str(prefix)], check=True, timeout=120, capture_output=True)
    with Path(f"{prefix}_failures.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["Name"], row["Occurrences"]) for row in rows] == [("d1", "3")]
    assert "Request for unknown model: 'd1' has no available versions" in rows[0]["Error"]
