"""A trace's date-times carry a time zone on every row or on none: rows that mix them are refused in one line naming
the lines of each kind. Read as if the zone-less were UTC, a trace whose even rows said `…Z` and odd rows the same
instants as a +02:00 wall clock became "600 arrivals in a pass of 7218 s (2.0 h)", played at 54 req/s, rc 0. A
zone on every row or on none still reads (tests/loadtest/test_arrival_trace.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.arrival_trace import read_trace
from quantserve.errors import QuantserveError


def _alternating(rows: int) -> str:
    """`rows` arrivals 10 ms apart, the even ones (lines 2, 4, …) in UTC with Z, the odd ones as +02:00 clock time
    without a zone."""
    stamps = [
        f"2026-11-30T12:00:00.{10 * i:03d}Z" if i % 2 == 0 else f"2026-11-30T14:00:00.{10 * i:03d}" for i in range(rows)
    ]
    return "timestamp\n" + "\n".join(stamps) + "\n"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "alternating.csv",
            _alternating(10),
            ": column 'timestamp': lines 2, 4, 6, … (5 lines) carry a time zone and lines 3, 5, 7, … (5 lines) do "
            "not; give every timestamp a zone, or none",
        ),
        (
            "one_naive.csv",
            "time,size\n2024-05-01T12:00:00Z,1\n2024-05-01T12:00:01+00:00,2\n# a comment\n2024-05-01 12:00:02,1\n",
            ": column 'time': lines 2, 3 carry a time zone and line 5 does not; give every timestamp a zone, or none",
        ),
        (
            "mixed.jsonl",
            '{"time": "2024-05-01T12:00:00", "n": 1}\n{"time": "2024-05-01T12:00:01-01:00", "n": 1}\n',
            ": column 'time': line 2 carries a time zone and line 1 does not; give every timestamp a zone, or none",
        ),
    ],
)
def test_rows_that_mix_zoned_and_zone_less_date_times_are_refused(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(QuantserveError) as refused:
        read_trace(path)
    assert str(refused.value) == f"--trace {path}{message}"
