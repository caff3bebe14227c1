"""A shape's window (`--stages`, `--shape`) ends where its stages were planned to end, not at Locust's late stop; a
step's latency records are read once.

Session 32 ended a rate's or a duration's window at its planned end (or the last answer after it); a shape planned
none, so its window ran on to Locust's stop: `--stages 2:3s,4:3s` answered 2950 requests, the last 5.688 s into a
window that stopped at 5.836 s, and read 505.5 req/s for 518.6 (its last stage the same). The shape's clock starts at
its first tick, as the first stage's users spawn, before the window opens (0.23-0.33 s here): its stages end their
lengths after that, not after the window's start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from loadtest import recording_files
from loadtest.load_pattern import Staged
from loadtest.load_settings import LoadSettings
from loadtest.recording_files import SAMPLE_COLUMNS, WINDOW_FILE, read_window
from loadtest.stage_figures import SHAPE_END_FILE, write_stage_start
from loadtest.step_result import _result_of_window

# the shapes asked at simulated seconds, as Locust's runner asks them, in a child process (locust monkey-patches)
STAGED = """
import json, sys, time
from argparse import Namespace
from types import SimpleNamespace
from loadtest import recording
from loadtest.locustfile_staged import StagedShape

shape = StagedShape()
shape.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=Namespace(stages="2:3s,4:3s", record_dir="")))
first = None
for second in (0.25, 1, 2, 3, 4, 5, 6):
    shape.start_time = time.perf_counter() - second
    first = first or time.time() - second
    if shape.tick() is None:
        break
print(json.dumps({"clock_start": first, "planned_end": recording._window.get("planned_end")}))
"""
USER_SHAPE = """
import json, sys, time
from argparse import Namespace
from types import SimpleNamespace
from loadtest import recording
from loadtest.locustfile_user_shape import UserShapeDriver

options = Namespace(user_shape=sys.argv[1], user_shape_cap=60.0, record_dir=sys.argv[2])
driver = UserShapeDriver()
driver.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options))
for second in range(9):
    for shape in (driver, driver.shape):
        if shape is not None:
            shape.start_time = time.perf_counter() - second
    if driver.tick() is None:
        break
print(json.dumps({"planned_end": recording._window.get("planned_end")}))
"""
TWO_STAGES = """
from locust import LoadTestShape

class Two(LoadTestShape):
    def tick(self):
        run = self.get_run_time()
        return None if run >= 2 else ((1 if run < 1 else 3), 5)
"""


def _child(script: str, *args: str) -> dict[str, float | None]:
    told = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert told.returncode == 0, told.stderr
    return dict(json.loads(told.stdout.splitlines()[-1]))


def test_the_staged_shape_plans_the_window_end_at_its_stages_end() -> None:
    """`--stages 2:3s,4:3s`, its first tick 0.25 s into the shape's clock: the window's planned end is 6 s after
    that clock's start, whenever the window opened after it."""
    told = _child(STAGED)
    assert told["planned_end"] is not None and told["clock_start"] is not None
    assert told["planned_end"] - told["clock_start"] == pytest.approx(6.0, abs=0.05)


def test_the_user_shape_plans_the_window_end_where_it_ended_the_run(tmp_path: Path) -> None:
    """The user's shape plans no length: its window ends where its tick() ended the run (returned None here), as
    `shape_end.json` records it, not at Locust's stop after it."""
    shape = tmp_path / "two.py"
    shape.write_text(TWO_STAGES)
    told = _child(USER_SHAPE, f"{shape}:Two", str(tmp_path))
    ended = json.loads((tmp_path / SHAPE_END_FILE).read_text())
    assert told["planned_end"] == ended["ended"] and ended["note"] == ""


START, CLOCK_S, STOP_S = 1_000.0, 0.3, 6.0  # the shape's clock began 0.3 s before the window; Locust stopped at +6.0


def _staged_record(record: Path, ends: np.ndarray) -> Path:
    """What a `--stages 2:3s,4:3s` run records now: its window (the planned end 5.7 s after its start, where 6 s of
    stages from the shape's clock end; Locust's stop 0.3 s later), its stage starts, answers ending at `ends`."""
    record.mkdir(parents=True)
    planned = START - CLOCK_S + 6.0
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": START + STOP_S, "planned_end": planned}))
    write_stage_start(record, 1, 2, 2, 3.0, START - CLOCK_S)
    write_stage_start(record, 2, 2, 4, 3.0, START - CLOCK_S + 3.0)
    rows = np.zeros((len(ends), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = ends, 2.0, 1.0
    np.save(record / "latencies-1.npy", rows)
    return record


def test_a_staged_window_and_its_last_stage_end_at_the_planned_end(tmp_path: Path) -> None:
    """100 req/s in stage 1 and 200 in stage 2, the last answer at the planned end: the step reads 5.7 s and each
    stage its own rate; to Locust's stop it read 870 / 6.0 = 145 req/s, its last stage 600 / 3.3 = 182."""
    ends = np.concatenate([START + 0.005 + np.arange(270) * 0.01, START + 2.7 + np.arange(1, 601) * 0.005])
    record = _staged_record(tmp_path / "raw", ends)
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 8), dtype=np.float32))
    step = Staged(((2, 3.0), (4, 3.0)))
    settings = LoadSettings("127.0.0.1:1", "m", data, step)  # type: ignore[arg-type]
    window = read_window(record)
    assert window.end == pytest.approx(START + 5.7)
    result = _result_of_window(settings, step, record, window, tmp_path / "none")
    assert (result.requests, result.window_s) == (870, pytest.approx(5.7))
    assert result.throughput_rps == pytest.approx(870 / 5.7)
    first, last = result.stages
    assert (first.end_s, last.start_s, last.end_s) == (2.7, 2.7, 5.7)
    assert (first.throughput_rps, last.throughput_rps) == (pytest.approx(100.0), pytest.approx(200.0))


def test_a_steps_latency_records_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The window's end, the window's rows and the open loop's arrivals read each file once; a record written anew
    (the next step, after `clear`) is read again."""
    record = _staged_record(tmp_path / "raw", START + np.arange(1, 101) * 0.05)
    np.save(record / "latencies-2.npy", np.array([[START + 1.0, 2.0, 1.0]]))
    reads: list[str] = []
    read_record = recording_files._read_record
    monkeypatch.setattr(recording_files, "_read_record", lambda path: reads.append(path.name) or read_record(path))
    window = recording_files.read_window(record)
    assert len(recording_files.read_latencies(record, window.start, window.end)) == 101
    assert len(recording_files.read_arrivals(record)) == 101
    assert sorted(reads) == ["latencies-1.npy", "latencies-2.npy"]
    recording_files.clear(record)
    np.save(record / "latencies-1.npy", np.array([[START + 1.0, 2.0, 1.0]]))
    assert len(recording_files.read_latencies(record, START, START + 2.0)) == 1
