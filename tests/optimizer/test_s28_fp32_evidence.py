"""An FP32 build is judged against its own file: no thin-evidence note on what its rows agree on.

CRISCross's `--precision fp32` build printed "share of flag decisions unchanged 1 over 64 held-out rows shows only
≥ 0.959 … about 268 rows would": FP32 against FP32 agrees by construction, and more rows would show nothing. A
candidate in another file (INT8, or here a copy of the same bytes) keeps the note.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from optimizer.verify import VerifyAgainstReference
from quantserve.cli import main
from quantserve.data import load_npz


@pytest.fixture
def held_64(tmp_path: Path) -> Path:
    import make_tiny_models

    return make_tiny_models.write_digits_like_npz(tmp_path / "held.npz", samples=64)


def test_the_reference_against_itself_has_no_thin_evidence_a_copy_does(tiny_onnx: Path, held_64: Path) -> None:
    from optimizer.export import export_onnx
    from optimizer.source import load_source

    reference = export_onnx(load_source(tiny_onnx), tiny_onnx.with_name("m.onnx")).path
    copy = shutil.copy(reference, reference.with_name("copy.onnx"))
    verify = VerifyAgainstReference(reference, load_npz(held_64), "held.npz", batch_size=8)
    assert verify.measure(reference)["thin_evidence"] == []
    (entry,) = verify.measure(Path(copy))["thin_evidence"]  # another file, the same answers: 64 rows show ≥ 0.959
    assert (entry["metric"], entry["rows"], entry["rows_needed"]) == ("top1_agreement", 64, 268)


def test_an_fp32_build_prints_no_thin_evidence_note(
    tiny_onnx: Path, calib_npz: Path, held_64: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["optimize", str(tiny_onnx), "--precision", "fp32", "--calib", str(calib_npz), "--eval", str(held_64)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "held-out rows shows only" not in err and "rows would (--eval)" not in err
