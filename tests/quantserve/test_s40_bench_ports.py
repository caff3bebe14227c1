"""`bench` refuses a --port-range too narrow for its servers before any work: it was refused only after both builds
were made and deployed, leaving OUT/NAME/repo without a bench.json (session 40)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantserve.cli import main


def test_a_port_range_of_two_is_refused_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--quick", "--out", str(out), "--port-range", "18950-18951"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("quantserve: error: no 3 free ports on 127.0.0.1 in --port-range 18950-18951")
        and err.count("\n") == 1
    )
    assert not out.exists(), "nothing built or written"
