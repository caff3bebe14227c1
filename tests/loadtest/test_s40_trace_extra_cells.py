"""A trace row with more cells than its header has names is refused naming the line: a comma inside a value (a
decimal comma, Python logging's "12:00:00,010") split it, and the time column read its first part alone — 500
arrivals 10 ms apart replayed as 5 bursts of 100 without a word (issue 11, session 40). A quoted comma fraction is
read, as ISO 8601 allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.arrival_trace import read_trace
from quantserve.errors import QuantserveError


def test_a_decimal_comma_under_a_one_name_header_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("time\n" + "".join(f"{1714564800 + i // 100},{10 * i % 1000:03d}\n" for i in range(500)))
    with pytest.raises(QuantserveError) as refused:
        read_trace(path)  # was: a pass of 4.01 s, 5 bursts of 100
    message = str(refused.value)
    assert f"--trace {path} line 2: 2 cells ('1714564800', '000') under a header of 1 name ('time')" in message
    assert "decimal comma" in message and "\n" not in message


def test_a_logging_time_unquoted_is_refused_and_quoted_is_read_to_the_millisecond(tmp_path: Path) -> None:
    rows = [f"2024-05-01 12:00:0{i // 100},{10 * i % 1000:03d}" for i in range(300)]
    bare = tmp_path / "bare.csv"
    bare.write_text("timestamp,level\n" + "".join(f"{row},INFO\n" for row in rows))
    with pytest.raises(QuantserveError, match=r"line 2: 3 cells \('2024-05-01 12:00:00', '000', 'INFO'\)"):
        read_trace(bare)
    quoted = tmp_path / "quoted.csv"
    quoted.write_text("timestamp,level\n" + "".join(f'"{row}",INFO\n' for row in rows))
    trace = read_trace(quoted)
    assert trace.offsets_s[:3].tolist() == pytest.approx([0.0, 0.01, 0.02])
    assert trace.offsets_s[-1] == pytest.approx(2.99)


def test_empty_cells_past_the_header_pass(tmp_path: Path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text("timestamp,batch_size\n0.0,1,\n0.5,2,,\n1.0,1,\n")  # a spreadsheet's trailing commas
    trace = read_trace(path)
    assert trace.offsets_s.tolist() == [0.0, 0.5, 1.0]
