"""A trace CSV's quoted cells may hold line breaks (an LLM-serving log's prompt column), and rows out of time order are
replayed sorted with a word, not silently (issue 11, session 39)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.arrival_trace import read_trace
from loadtest.trace_plan import plan_lines
from quantserve.errors import QuantserveError

PROMPTS = (
    "timestamp,prompt,batch_size\n"
    '0.0,"hello\nworld",1\n'
    '0.5,"one line",2\n'
    '1.0,"a ""quoted"" one\nspanning\nthree",3\n'
    "1.5,plain,1\n"
)


def test_a_quoted_cell_spanning_lines_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text(PROMPTS)
    trace = read_trace(path)  # was: "line 3: timestamp 'world\"' is not a number of seconds"
    assert trace.offsets_s.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert trace.sizes is not None and trace.sizes.tolist() == [1, 2, 3, 1]


def test_a_bad_cell_after_a_multi_line_cell_is_named_by_the_line_it_starts_on(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text(PROMPTS + "soon,x,1\n")  # the row after "three" starts on line 9
    with pytest.raises(QuantserveError) as refused:
        read_trace(path)
    assert f"--trace {path} line 9: timestamp 'soon'" in str(refused.value)


def test_a_quote_never_closed_is_a_bad_cell_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "open.csv"
    path.write_text('time,note\n0,ok\n1,"open\n2,ok\n')  # not a cell running to the end: each line a row
    trace = read_trace(path)
    assert trace.requests == 3


def test_rows_out_of_time_order_are_sorted_and_said(tmp_path: Path) -> None:
    merged = tmp_path / "merged.csv"
    merged.write_text("timestamp\n0.5\n0.1\n0.3\n0.2\n")
    trace = read_trace(merged)
    assert np.allclose(trace.offsets_s, [0.0, 0.1, 0.2, 0.4])
    assert trace.order_note == (
        f"trace {merged}: 2 of 4 rows are earlier than the row before them (the first at line 3); the arrivals are "
        "replayed in time order"
    )
    assert trace.order_note in plan_lines(trace, 1.0)
    newest_first = tmp_path / "export.csv"
    newest_first.write_text("timestamp\n3\n2\n1\n0\n")
    assert "every row is earlier than the one before (newest first)" in (read_trace(newest_first).order_note or "")


def test_rows_in_order_have_no_note(tmp_path: Path) -> None:
    path = tmp_path / "sorted.csv"
    path.write_text("timestamp\n0\n0\n0.1\n0.3\n")  # equal stamps are in order
    trace = read_trace(path)
    assert trace.order_note is None
    assert not any("time order" in line for line in plan_lines(trace, 1.0))
