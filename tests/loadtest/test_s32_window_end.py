"""The measured window ends at its planned end, or at the last answer after it, never at Locust's stop.

A probe (issue 11) found every rate divided by a window that ran on to Locust's stop, 0.12-0.50 s past the last
request (its local `Runner.stop` reads the call stack before it fires `test_stopping`, its hub held, nothing sent):
`--rate 100 --duration 4s` offered and answered 399 requests and printed 94.2 req/s over a 4.236 s window; a
closed loop's 3.357 s window for 3.008 s of requests read 279 req/s instead of ~312; a trace's whole pass read
"85.83 req/s offered, part of a pass of 100 req/s"; tune, which reads the same window, pruned a trial on it.
The window still covers every request it counts (what dividing by the measured window, not the asked one, kept):
one answered after the planned end and before the stop is counted, and the window runs on to it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadtest.load_pattern import ClosedLoop, OpenLoop, TraceReplay
from loadtest.load_settings import LoadSettings
from loadtest.recording_files import SAMPLE_COLUMNS, WINDOW_FILE, measured_end, read_window
from loadtest.step_result import _result_of_window

START, PLANNED_S, STOP_S = 1_000.0, 4.0, 4.236  # Locust's stop 0.236 s past the planned end, as the probe's


def _record(record: Path, ends: np.ndarray, planned: bool = True) -> Path:
    """A window file as `loadtest.recording` writes it (its `end` Locust's stop) and answered requests ending at
    `ends` (2 ms each)."""
    record.mkdir(parents=True)
    window = {"start": START, "end": START + STOP_S}
    if planned:
        window["planned_end"] = START + PLANNED_S
    (record / WINDOW_FILE).write_text(json.dumps(window))
    rows = np.zeros((len(ends), SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = ends, 2.0, 1.0
    np.save(record / "latencies-1.npy", rows)
    return record


def _settings(tmp_path: Path, step: object) -> LoadSettings:
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((4, 8), dtype=np.float32))
    return LoadSettings("127.0.0.1:1", "m", data, step, duration_s=PLANNED_S)  # type: ignore[arg-type]


def test_the_window_ends_at_its_planned_end_not_at_locusts_stop(tmp_path: Path) -> None:
    """--rate 100 --duration 4s: 399 arrivals, each answered 2 ms later, the last at +3.992 s; the stop at +4.236 s."""
    step = OpenLoop(100.0)
    record = _record(tmp_path / "raw", START + 0.01 * np.arange(1, 400) + 0.002)
    window = read_window(record)
    assert (window.end, window.planned_end) == (START + PLANNED_S, START + PLANNED_S)
    result = _result_of_window(_settings(tmp_path, step), step, record, window, tmp_path / "none")
    assert (result.window_s, result.requests) == (PLANNED_S, 399)
    assert result.throughput_rps == pytest.approx(99.75)  # was 399 / 4.236 = 94.2
    assert (result.offered_requests, result.offered_window_s, result.unsent, result.cut_at_end) == (399, 4.0, 0, 0)


def test_an_answer_after_the_planned_end_is_counted_and_the_window_runs_to_it(tmp_path: Path) -> None:
    """Closed loop: users answered up to the stop are counted, so the window covers them: 0.1 s past the planned
    end here; its rate divides the same requests by the span they were sent and answered in."""
    ends = START + np.linspace(0.01, PLANNED_S + 0.1, 1000)
    record = _record(tmp_path / "raw", np.concatenate([ends, [START + STOP_S + 0.05]]))  # one after the stop
    step = ClosedLoop(users=4)
    window = read_window(record)
    assert window.end == pytest.approx(START + PLANNED_S + 0.1)
    result = _result_of_window(_settings(tmp_path, step), step, record, window, tmp_path / "none")
    assert result.requests == 1000 and result.throughput_rps == pytest.approx(1000 / (PLANNED_S + 0.1))


def test_a_trace_pass_played_whole_is_offered_at_its_mean(tmp_path: Path) -> None:
    """300 arrivals 0.01 s apart, one pass of 3 s, answered after 2 ms; the last answers come after the planned end
    (+3.0 s) and before the stop: the offered rate divides by the span the schedule offered them in."""
    trace = tmp_path / "trace.csv"
    np.savetxt(trace, np.arange(300) * 0.01, fmt="%.2f", header="timestamp", comments="")
    step = TraceReplay(str(trace))
    record = tmp_path / "raw"
    record.mkdir()
    (record / WINDOW_FILE).write_text(json.dumps({"start": START, "end": START + 3.5, "planned_end": START + 3.0}))
    arrivals = START + 0.001 + np.arange(300) * 0.01
    rows = np.zeros((300, SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = arrivals + 0.05, 50.0, 1.0  # the last answered at +3.041 s
    np.save(record / "latencies-1.npy", rows)
    settings = _settings(tmp_path, step)
    settings.duration_s = 3.0
    result = _result_of_window(settings, step, record, read_window(record), tmp_path / "none")
    assert result.window_s == pytest.approx(3.041)
    assert (result.offered_requests, result.offered_window_s) == (300, 3.0)
    assert result.offered_rps == pytest.approx(100.0)
    assert "part of a pass" not in result.label and "(100 req/s mean)" in result.label


@pytest.mark.parametrize(
    ("stopped", "planned", "answered", "end"),
    [
        (4.236, 4.0, [3.992], 4.0),  # the stop late, the last answer before the planned end
        (4.236, 4.0, [4.1, 4.3], 4.1),  # answered after the planned end, before the stop: counted, in the window
        (2.5, 4.0, [2.4], 2.5),  # an interrupt, the model gone: the stop came first
        (4.236, None, [3.992], 4.236),  # nothing planned (a shape's stages, a record from before): the stop
        (4.236, 4.0, [], 4.0),  # nothing answered: the planned end
    ],
)
def test_measured_end(stopped: float, planned: float | None, answered: list[float], end: float) -> None:
    assert measured_end(0.0, stopped, planned, np.array(answered)) == pytest.approx(end)


def test_the_window_recorded_before_planned_end_was_kept_ends_at_locusts_stop(tmp_path: Path) -> None:
    """A raw folder of an earlier run (no `planned_end`): its window as it was saved, so `report` still pairs it with
    its saved result (`unfinished_steps`)."""
    record = _record(tmp_path / "raw", START + 0.01 * np.arange(1, 400), planned=False)
    assert read_window(record).end == START + STOP_S


def test_an_open_loops_straggler_after_its_planned_end_does_not_thin_its_rate(tmp_path: Path) -> None:
    """A trace replay's 140 arrivals at 35 req/s, all answered in 2 ms but one, answered 1.95 s after the planned end
    (CI, loaded): counted, its latency in the figures, the window running to it; the rate is the answers the planned
    window held over that window (139 / 4 s), not 140 over 5.95 s ("23.5 req/s" of 35 offered and answered)."""
    ends = START + np.linspace(0.02, PLANNED_S - 0.02, 140)
    ends[-1] = START + PLANNED_S + 1.95
    record = _record(tmp_path / "raw", ends)
    window = json.loads((record / WINDOW_FILE).read_text())
    (record / WINDOW_FILE).write_text(json.dumps({**window, "end": START + PLANNED_S + 2.0}))
    step = OpenLoop(35.0)
    result = _result_of_window(_settings(tmp_path, step), step, record, read_window(record), tmp_path / "none")
    assert result.window_s == pytest.approx(PLANNED_S + 1.95) and result.requests == 140
    assert result.throughput_rps == pytest.approx(139 / PLANNED_S)
    assert result.inferences_per_s == pytest.approx(139 / PLANNED_S)
