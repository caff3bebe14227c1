"""Unit-less trace stamps in milliseconds with fewer than 1000 rows (session 31, issue 11): `timestamp` 0, 10, …, 2990
was read as seconds ("the run lasts 3000 s") without a word, as the warning needed 1000 rows or more. Whole-number
stamps a median 10 s or more apart are warned of whatever the row count, with the way to say the unit.
"""

from __future__ import annotations

from pathlib import Path

from loadtest.arrival_trace import read_trace


def _trace(tmp_path: Path, column: str, stamps: list[float]) -> Path:
    path = tmp_path / "t.csv"
    path.write_text(f"{column}\n" + "".join(f"{s:g}\n" for s in stamps))
    return path


def test_few_whole_number_stamps_far_apart_are_warned_of_as_likely_milliseconds_and_no_others(tmp_path: Path) -> None:
    trace = read_trace(_trace(tmp_path, "timestamp", [10.0 * k for k in range(300)]))
    assert trace.period_s == 3000.0
    assert trace.unit_note == (
        f"warning: --trace {tmp_path / 't.csv'}: column 'timestamp' has no unit, so its stamps are read as seconds: "
        "300 arrivals, whole numbers a median 10 s apart (0.1 req/s); if they are milliseconds, name the column "
        "'timestamp_ms' or replay with --trace-speed 1000 (naming it 'timestamp_s' says they are seconds)"
    )
    # not where seconds are said, the stamps are fractional or close, or the replay is sped up to milliseconds
    assert read_trace(_trace(tmp_path, "timestamp_s", [10.0 * k for k in range(300)])).unit_note is None
    assert read_trace(_trace(tmp_path, "timestamp", [10.5 * k for k in range(300)])).unit_note is None
    assert read_trace(_trace(tmp_path, "timestamp", [float(k) for k in range(300)])).unit_note is None
    sped = read_trace(_trace(tmp_path, "timestamp", [10.0 * k for k in range(300)]), speed=1000)
    assert sped.unit_note is None and sped.period_s == 3.0
