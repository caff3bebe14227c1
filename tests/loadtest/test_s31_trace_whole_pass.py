"""A trace's default run of one pass in whole seconds (session 31, issue 11), no Locust run here: 300 arrivals 0.01 s
apart make a pass of 3.0000000000000004 s in floats, which `math.ceil` took to a 4 s run — "1.33 passes", 400
requests sent instead of the file's 300. The pass is rounded to the millisecond before the ceiling
(`whole_pass_seconds`, tune's trace window's rule too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.arrival_trace import read_trace
from loadtest.trace_plan import whole_pass_seconds
from quantserve import cli

DEAD_URL = "127.0.0.1:1"  # nothing answers: the plan is printed, then the server check stops the run


def _trace(tmp_path: Path, rows: int, gap: float) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("timestamp\n" + "".join(f"{k * gap:.3f}\n" for k in range(rows)))
    return path


def test_a_pass_of_whole_seconds_in_floats_is_not_taken_a_second_longer(tmp_path: Path) -> None:
    trace = read_trace(_trace(tmp_path, 300, 0.01))
    assert trace.period_s != 3.0  # the float sum the fault came from
    assert whole_pass_seconds(trace.period_s) == 3
    assert [whole_pass_seconds(s) for s in (0.2, 2.5, 3.0004, 3.002)] == [1, 3, 3, 4]


def test_the_default_run_of_such_a_trace_lasts_its_one_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, x=np.zeros((4, 2), np.float32))
    trace = _trace(tmp_path, 300, 0.01)
    argv = ["loadtest", "--url", DEAD_URL, "--metrics-url", DEAD_URL, "--data", str(data), "--model", "m"]
    assert cli.main([*argv, "--out", str(tmp_path / "out"), "--trace", str(trace)]) == 2
    plan = capsys.readouterr().out.splitlines()[0]
    assert plan.endswith("the run lasts 3 s, 1 pass"), plan
