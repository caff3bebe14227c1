"""A results or report file that cannot be written is one line naming it and what was kept: a full disk said only
`[Errno 28] No space left on device` (the write names no file), an unwritable folder named the hidden temporary."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from loadtest.load_run import LoadRun
from loadtest.percentiles import LatencySummary
from loadtest.results import LoadResult
from quantserve import cli
from quantserve.files import write_atomic

KEPT = "the old file is untouched and no temporary is left"


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, written: int, code: int = errno.ENOSPC) -> None:
    """Every file write stops after `written` bytes on disk with the system's `code`, as a full disk stops it."""
    write_bytes = Path.write_bytes

    def cut_short(self: Path, data: bytes) -> int:  # type: ignore[override]
        write_bytes(self, data[:written])
        raise OSError(code, "No space left on device" if code == errno.ENOSPC else "Read-only file system")

    monkeypatch.setattr(Path, "write_bytes", cut_short)


def test_a_full_disk_names_the_file_and_leaves_the_old_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "load-slow.json"
    target.write_text("the old run\n")
    fill_disk_after(monkeypatch, 7)
    with pytest.raises(OSError) as raised:
        write_atomic(target, "the new run, longer\n")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(target)
    assert raised.value.strerror == f"no space left on device; nothing written: {KEPT}"
    assert [p.name for p in tmp_path.iterdir()] == ["load-slow.json"] and target.read_text() == "the old run\n"


def test_a_read_only_disk_with_no_old_file_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill_disk_after(monkeypatch, 0, errno.EROFS)
    with pytest.raises(OSError) as raised:
        write_atomic(tmp_path / "report.md", "# report\n")
    assert raised.value.errno == errno.EROFS
    assert raised.value.strerror == "read-only file system; nothing written: no file was made and no temporary is left"
    assert list(tmp_path.iterdir()) == []


def test_report_on_a_full_disk_says_which_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    latency = LatencySummary.from_samples(np.full(100, 5.0))
    LoadRun("m", [LoadResult("m", "127.0.0.1:1", "closed", 4, 10.0, 100, 0, 10.0, 10.0, latency)]).save(tmp_path)
    assert cli.main(["report", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    fill_disk_after(monkeypatch, 100)
    assert cli.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"quantserve: error: {tmp_path / 'report.md'}: no space left on device; nothing written: {KEPT}\n"
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
