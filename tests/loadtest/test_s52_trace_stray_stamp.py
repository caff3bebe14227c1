"""A stamp out of order and far outside the rows around it (a lone -1 among 0–60 s rows) is named in the order note,
line and value, with what it does to the pass: it was replayed 1 s before the trace's start, the pass grown to 61 s,
and the note said only "1 of 3925 rows are earlier than the row before them" (session 52). It is noted, not refused:
a CSV's stamps are times of any origin, and rows out of order are replayed sorted."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from loadtest.arrival_trace import read_trace


def test_an_early_stray_stamp_is_named_with_its_line_and_value(tmp_path: Path) -> None:
    path = tmp_path / "stray.csv"
    path.write_text("timestamp\n0\n0.5\n1.0\n-1\n1.5\n2.0\n")
    trace = read_trace(path)
    assert trace.recorded_period_s > 3.0  # replayed in its time order, as rows out of order are
    assert trace.order_note == (
        f"trace {path}: 1 of 6 rows are earlier than the row before them (the first at line 5); line 5's stamp '-1' "
        "lies outside the rows around it ('1.0' and '1.5'), and is the pass's first arrival, 1 s before the next; "
        "the arrivals are replayed in time order"
    )


def test_a_late_stray_stamp_is_named_too(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("timestamp\n0\n0.5\n99\n1.0\n1.5\n")
    note = read_trace(path).order_note or ""
    assert (
        "line 4's stamp '99' lies outside the rows around it ('0.5' and '1.0'), and is the pass's last arrival, "
        in note
    )
    assert "97.5 s after the one before" in note


def test_rows_merged_or_newest_first_name_no_stray(tmp_path: Path) -> None:
    newest_first = tmp_path / "newest.csv"
    newest_first.write_text("timestamp\n3\n2\n1\n0\n")
    assert "outside" not in (read_trace(newest_first).order_note or "")
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("timestamp\n-5\n-4.5\n-4\n-3\n")  # a whole trace before zero: relative stamps, as before
    trace = read_trace(shifted)
    assert trace.order_note is None and np.allclose(trace.offsets_s, [0.0, 0.5, 1.0, 2.0])


def test_several_strays_are_listed_and_the_edge_one_named(tmp_path: Path) -> None:
    path = tmp_path / "two.csv"
    path.write_text("timestamp\n0\n1\n-1\n2\n3\n99\n4\n5\n")
    note = read_trace(path).order_note or ""
    assert "lines 4 ('-1') and 7 ('99') lie outside the rows around them, line 4's is the pass's first arrival" in note
