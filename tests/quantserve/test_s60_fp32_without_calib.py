"""`optimize --precision fp32` without --calib (session 60, probe item 12): an FP32 build calibrates nothing, yet it
was refused ("optimize needs --calib"), so a new user with held-out data only was turned away. FP32 (and FP16) now
checks, verifies and measures the build on --eval's rows, and says so in the build's notes; given neither file it
is one line naming both and why rows are needed; INT8 still needs --calib."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantserve import cli

NO_CALIB_NOTE = "no --calib: FP32 calibrates nothing; checked (axis 0, NaN)"


def projection(path: Path) -> Path:
    """y = x·W, (N, 4) -> (N, 3)."""
    weights = numpy_helper.from_array(np.random.default_rng(3).normal(0, 1, (4, 3)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "projection",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def model_and_rows(tmp_path: Path) -> tuple[Path, Path]:
    rows = tmp_path / "heldout.npz"
    np.savez(rows, x=np.random.default_rng(4).normal(0, 1, (40, 4)).astype(np.float32))
    return projection(tmp_path / "projection.onnx"), rows


def test_fp32_with_eval_only_builds_and_records_the_note(
    model_and_rows: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, rows = model_and_rows
    out = tmp_path / "build"
    assert cli.main(["optimize", str(model), "--precision", "fp32", "--eval", str(rows), "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"] == "fp32"
    verification = manifest["verification"]
    assert verification["data"] == str(rows.resolve())  # verified on --eval's rows, none held out of a --calib
    notes = [note for note in verification.get("notes") or [] if note.startswith(NO_CALIB_NOTE)]
    assert len(notes) == 1 and "--eval's 40 rows" in notes[0]
    assert f"quantserve: note: {notes[0]}" in capsys.readouterr().err


def test_fp32_with_neither_file_is_one_line_naming_both(
    model_and_rows: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = model_and_rows
    out = tmp_path / "build"
    assert cli.main(["optimize", str(model), "--precision", "fp32", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("quantserve: error: optimize needs --calib or --eval (")
    assert "calibrates nothing" in err and "QUANTSERVE_CALIB" in err
    assert not out.exists()


def test_int8_without_calib_is_still_refused(
    model_and_rows: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, rows = model_and_rows
    out = tmp_path / "build"
    assert cli.main(["optimize", str(model), "--eval", str(rows), "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "quantserve: error: optimize needs --calib: give it on the command line, in the environment "
        "(QUANTSERVE_CALIB=…) or in a config file's [optimize] table (calib = …)\n"
    )
    assert not out.exists()
