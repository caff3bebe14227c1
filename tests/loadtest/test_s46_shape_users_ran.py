"""A `--shape` run says the users that ran, not those its stages asked (session 46: a shape cut 3 s into a rise to
40 users at 8/s, 26 running, read "up to 40 users" in the headline, its stage row "40")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from loadtest.percentiles import LatencySummary
from loadtest.report_lines import stage_cells
from loadtest.results import LoadResult
from loadtest.stage_figures import StageFigures, read_stage_starts, stage_figures

CUT = """
from locust import LoadTestShape


class Cut(LoadTestShape):
    def tick(self):
        if self.get_run_time() >= 4:
            raise RuntimeError("cut mid-rise")
        return (2, 100) if self.get_run_time() < 1 else (40, 8)
"""
# the driver asked at simulated seconds, the runner's count rising 8 a second from the second's tick; a child
# process, as locust monkey-patches the interpreter
DRIVE = """
import sys, time
from argparse import Namespace
from types import SimpleNamespace
from loadtest.locustfile_user_shape import UserShapeDriver

options = Namespace(user_shape=sys.argv[1], user_shape_cap=60.0, record_dir=sys.argv[2])
driver = UserShapeDriver()
runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options), user_count=0)
driver.runner = runner
for second, running in enumerate((0, 2, 10, 18, 26)):
    runner.user_count = running
    for shape in (driver, driver.shape):
        if shape is not None:
            shape.start_time = time.perf_counter() - second
    if driver.tick() is None:
        break
"""


def test_the_runner_s_users_are_recorded_stage_by_stage(tmp_path: Path) -> None:
    shape = tmp_path / "cut.py"
    shape.write_text(CUT)
    subprocess.run([sys.executable, "-c", DRIVE, f"{shape}:Cut", str(tmp_path)], timeout=120, check=True)
    starts = read_stage_starts(tmp_path)
    assert [(s["users"], s["reached"]) for s in starts] == [(2, 2), (40, 26)]
    figures = stage_figures(np.array([[starts[1]["started"] + 0.5, 1.0, 1.0]]), starts[0]["started"], 1e10, starts)
    assert [f.label for f in figures] == ["stage 1/2: 2 users", "stage 2/2: 26 of 40 users"]
    assert [stage_cells(f)[1] for f in figures] == ["2", "26 of 40"]


def _result(*stages: tuple[int, int | None]) -> LoadResult:
    latency = LatencySummary.from_samples(np.ones(3))
    figures = [
        StageFigures(n, len(stages), users, 3.0, 3.0 * (n - 1), 3.0 * n, 3, 0, 1.0, latency, reached=reached)
        for n, (users, reached) in enumerate(stages, 1)
    ]
    return LoadResult("m", "127.0.0.1:1", "staged", 40, 6.0, 6, 0, 1.0, 1.0, latency, stages=figures)


def test_the_headline_says_the_users_that_ran_and_what_was_asked_where_it_differs() -> None:
    assert _result((2, 2), (40, 26)).label == "m staged, all stages together (up to 26 users; the shape asked 40)"
    assert _result((2, 2), (40, 40), (4, 40)).label == "m staged, all stages together (up to 40 users)"
    assert _result((2, None), (40, None)).label == "m staged, all stages together (up to 40 users)"  # --stages, older
