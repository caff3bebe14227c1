"""Trace stamps in the wrong unit are seen before a run (issue 11): a trace of 1000 arrivals stamped in relative
milliseconds under a plain `timestamp` column was read as seconds, offered 0.098 req/s and, without --duration,
planned a 10224 s (2.8 h) pass with no word."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.arrival_trace import read_trace
from loadtest.trace_plan import plan_lines


def write_trace(path: Path, column: str, stamps: np.ndarray) -> Path:
    path.write_text(f"{column},user_id\n" + "".join(f"{t:.1f},u{i}\n" for i, t in enumerate(stamps)))
    return path


def ms_stamps(arrivals: int = 1000) -> np.ndarray:
    """A 10 s test's arrivals, stamped in ms from its start (the prober's t_ms.csv)."""
    return np.sort(np.random.default_rng(3).uniform(0, 10_000, arrivals))


def test_millisecond_stamps_read_as_seconds_are_warned_of_with_the_way_to_say_so(tmp_path: Path) -> None:
    trace = read_trace(write_trace(tmp_path / "t.csv", "timestamp", ms_stamps()))
    assert trace.unit_note is not None
    assert "column 'timestamp' has no unit, so its stamps are read as seconds: 1000 arrivals a mean " in trace.unit_note
    assert "name the column 'timestamp_ms' or replay with --trace-speed 1000" in trace.unit_note
    plan = plan_lines(trace, trace.period_s)
    assert plan[1] == trace.unit_note
    assert f"1000 arrivals in a pass of {trace.period_s:.0f} s (2.8 h), {1000 / trace.period_s:.3g} req/s" in plan[0]
    assert plan[0].endswith(f"the run lasts {trace.period_s:.0f} s (2.8 h), 1 pass"), plan[0]


def test_stamps_whose_unit_is_said_or_that_look_like_seconds_are_not_warned_of(tmp_path: Path) -> None:
    said = read_trace(write_trace(tmp_path / "ms.csv", "timestamp_ms", ms_stamps()))
    assert said.unit_note is None and 9.9 < said.period_s < 10.1
    assert read_trace(write_trace(tmp_path / "s.csv", "timestamp_s", ms_stamps())).unit_note is None
    assert read_trace(tmp_path / "ms.csv", speed=1000).unit_note is None  # the warning's other way out
    seconds = read_trace(write_trace(tmp_path / "sec.csv", "timestamp", ms_stamps() / 1000))
    assert seconds.unit_note is None
    few = read_trace(write_trace(tmp_path / "few.csv", "time", ms_stamps(999)))  # too few to judge
    assert few.unit_note is None
    plan = plan_lines(seconds, 60.0)
    assert plan == [plan[0]] and plan[0].startswith(f"trace {tmp_path / 'sec.csv'}: 1000 arrivals in a pass of 10 s, ")
    assert plan[0].endswith(f"the run lasts 60 s, {60 / seconds.period_s:.3g} passes"), plan[0]


def test_a_rate_of_a_thousand_or_more_is_written_out_not_in_exponent_form(tmp_path: Path) -> None:
    """A 1 s pass of 1000 arrivals read "1e+03 req/s offered (peak 1e+03 req/s over 1 s)"."""
    trace = read_trace(write_trace(tmp_path / "k.csv", "timestamp_ms", np.arange(1000) * 1.0))
    plan = plan_lines(trace, 1.0)[0]
    assert "1000 arrivals in a pass of 1 s, 1000 req/s offered (peak 1000 req/s over 1 s)" in plan, plan
    assert "e+" not in plan


def test_figures_from_1000_on_are_whole_numbers() -> None:
    """A burst of 3001 in a second read "peak 3000 req/s" in the plan beside the JSON's 3001 (session 39)."""
    from loadtest.trace_plan import figure

    assert [figure(v) for v in (1000, 3001, 12345.6, 999.4, 0.01234, 283.14)] == [
        "1000",
        "3001",
        "12346",
        "999",
        "0.0123",
        "283",
    ]
