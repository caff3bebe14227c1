"""A trace CSV split by semicolons or tabs is one line naming the delimiter found and the comma expected (pl10): the
semicolon's said "no arrival-time column (… found: timestamp;batch_size)", the tab's was read as perf_analyzer's
gaps and said its header lacked "timestamp", which it held."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtest.arrival_trace import read_trace
from quantserve.errors import QuantserveError


@pytest.mark.parametrize(
    ("name", "delimiter", "said"),
    [
        ("semi.csv", ";", "semicolons (;)"),
        ("tab.tsv", "\t", "tabs"),
        ("tab.txt", "\t", "tabs"),
        ("bar", "|", "bars (|)"),
    ],
)
def test_another_delimiter_is_named_beside_the_comma_expected(
    tmp_path: Path, name: str, delimiter: str, said: str
) -> None:
    path = tmp_path / name
    path.write_text(f"# exported\ntimestamp{delimiter}batch_size\n0.0{delimiter}1\n0.005{delimiter}2\n")
    with pytest.raises(QuantserveError) as raised:
        read_trace(path)
    shown = f"timestamp{delimiter}batch_size".replace("\t", "\\t")
    assert str(raised.value) == (
        f"--trace {path} line 2: the header '{shown}' splits its columns by {said}; a trace CSV's are split by "
        "commas (save it comma-separated)"
    )


def test_commas_and_gaps_read_as_before(tmp_path: Path) -> None:
    """A comma-separated header whose other names hold a semicolon, and perf_analyzer's gaps, are read."""
    csv = tmp_path / "t.csv"
    csv.write_text('timestamp,"note; free text"\n0.0,a\n0.5,b;c\n')
    np.testing.assert_allclose(read_trace(csv).offsets_s, [0.0, 0.5])
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("1000\n2000\n")
    np.testing.assert_allclose(read_trace(gaps).offsets_s, [0.0, 0.001])
