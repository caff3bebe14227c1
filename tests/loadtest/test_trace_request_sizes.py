"""A trace's request sizes written as integral floats: pandas writes an integer column that holds a missing value as
`2.0`, and such a trace was refused as not a whole number of samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.arrival_trace import read_trace
from quantserve.errors import QuantserveError


def test_integral_float_sizes_are_whole_numbers_and_a_fraction_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sizes.csv"
    path.write_text("time,batch_size\n0.0,2.0\n0.1,2.00\n0.2,2e0\n0.3,32\n")
    sizes = read_trace(path).sizes
    assert sizes is not None and sizes.dtype.kind == "i" and sizes.tolist() == [2, 2, 2, 32]
    path.write_text("time,batch_size\n0.0,2.0\n0.1,2.5\n")
    with pytest.raises(QuantserveError) as refused:
        read_trace(path)
    assert str(refused.value) == (
        f"--trace {path} line 3: batch_size '2.5' is not a whole number of samples from 1 to 4096"
    )
