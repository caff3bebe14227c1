"""A spreadsheet's trace export read as written (session 41): its trailing `,,` rows were refused ("timestamp ''
is not a number"), and an ISO 8601 zone of hours only (`+01`) as "not a date-time"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.arrival_trace import read_trace
from quantserve.errors import QuantserveError


def test_rows_of_empty_cells_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("timestamp,batch_size\r\n0.0,1\r\n0.5,2\r\n,,\r\n1.0,1\r\n , \r\n,,\r\n")
    trace = read_trace(path)
    np.testing.assert_allclose(trace.offsets_s, [0.0, 0.5, 1.0])
    assert trace.sizes is not None and list(trace.sizes) == [1, 2, 1]


def test_a_zone_of_hours_only_is_read(tmp_path: Path) -> None:
    path = tmp_path / "zoned.csv"
    path.write_text("timestamp\n2026-03-29T01:59:59+01\n2026-03-29T03:00:01+02\n2026-03-29T01:00:03+00\n")
    np.testing.assert_allclose(read_trace(path).offsets_s, [0.0, 2.0, 4.0])


def test_a_zone_past_23_hours_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp\n2026-03-29T01:59:59+25\n2026-03-29T02:00:00+25\n")
    with pytest.raises(QuantserveError, match="has zone \\+25, not one from -23:59 to \\+23:59"):
        read_trace(path)
