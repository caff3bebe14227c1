"""A raw record cut short (a full disk, a file size limit) is one line naming the file, not numpy's traceback.

A probe (issue 11) ran `quantserve report DIR` on a run cut by `ulimit -f 40`, its latencies file stopped at 40 KB:
a 38-line traceback ending `ValueError: cannot reshape array of size 5104 into shape (1498,8)`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from loadtest import recording_files
from quantserve.cli import main
from quantserve.errors import QuantserveError

LIMIT_BYTES = 40 * 1024  # `ulimit -f 40`


def _cut(path: Path, rows: int = 1498) -> Path:
    """A record of `rows` rows of SAMPLE_COLUMNS columns, as a Locust process saves it, cut at LIMIT_BYTES."""
    array = np.zeros((rows, recording_files.SAMPLE_COLUMNS))
    array[:, 0], array[:, 2] = 1_001.0, 1.0
    np.save(path, array)
    path.write_bytes(path.read_bytes()[:LIMIT_BYTES])
    return path


def _step_folder(results: Path) -> Path:
    """A results folder whose one step's Locust processes were cut short: its window written, its latencies cut."""
    record = results / "raw" / "m-u4"
    record.mkdir(parents=True)
    (record / recording_files.WINDOW_FILE).write_text(json.dumps({"start": 1_000.0, "end": 1_004.0}))
    return record


def test_report_on_a_cut_latencies_file_names_it_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = _cut(_step_folder(tmp_path) / "latencies-29047.npy")
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {cut}: not a readable load record "
        f"(ValueError: cannot reshape array of size 5104 into shape (1498,{recording_files.SAMPLE_COLUMNS}))\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no report half-written


@pytest.mark.parametrize("name", ["latencies-1.npy", "unanswered-1.npy", "unsent-1.npy"])
def test_every_cut_record_is_one_error_naming_it(tmp_path: Path, name: str) -> None:
    cut = _cut(tmp_path / name, rows=1000 if name == "latencies-1.npy" else 3000)
    with pytest.raises(
        QuantserveError, match=f"^{re.escape(str(cut))}: not a readable load record \\(ValueError: cannot reshape"
    ):
        recording_files.read_arrivals(tmp_path)


def test_a_window_cut_from_its_latencies_reads_as_locust_stopped_it(tmp_path: Path) -> None:
    """The window's end reads the latencies (`measured_end`): a cut one leaves it at the stop, and the latencies'
    own read names the file."""
    record = _step_folder(tmp_path)
    (record / recording_files.WINDOW_FILE).write_text(
        json.dumps({"start": 1_000.0, "end": 1_004.3, "planned_end": 1_004.0})
    )
    _cut(record / "latencies-1.npy")
    assert recording_files.read_window(record).end == 1_004.3
    with pytest.raises(QuantserveError, match=re.escape("latencies-1.npy: not a readable load record")):
        recording_files.read_latencies(record, 1_000.0, 1_004.3)


def test_a_cut_window_file_is_one_error_naming_it(tmp_path: Path) -> None:
    record = _step_folder(tmp_path)
    (record / recording_files.WINDOW_FILE).write_text('{"start": 1000.0, "e')
    with pytest.raises(
        QuantserveError, match=f"^{re.escape(str(record / recording_files.WINDOW_FILE))}: not a readable load record"
    ):
        recording_files.read_window(record)
