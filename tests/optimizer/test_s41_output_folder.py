"""An output folder optimize may take (session 41): `--out` naming a folder of the user's files replaced it whole,
their calibration .npz with it, exit 0; `--out .` failed at the end on "device or resource busy" and left a
hidden `.old-` folder behind. Both are refused before any work, nothing touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantserve.cli import main


def _argv(tiny_onnx: Path, calib: Path, out: str) -> list[str]:
    return ["optimize", str(tiny_onnx), "--calib", str(calib), "--precision", "fp32", "--out", out]


def test_a_folder_of_other_files_is_refused_and_kept(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "sub" / "sentinel").write_text("keep")
    calib = mine / "calib.npz"
    calib.write_bytes(calib_npz.read_bytes())
    assert main(_argv(tiny_onnx, calib, str(mine))) == 2
    err = capsys.readouterr().err
    assert f"--out {mine}: a folder of other files (no manifest.json of an earlier build)" in err
    assert (mine / "sub" / "sentinel").read_text() == "keep" and calib.is_file()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no hidden folder left"


def test_an_earlier_build_and_an_empty_folder_are_taken(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "build"
    out.mkdir()
    assert main(_argv(tiny_onnx, calib_npz, str(out))) == 0, "an empty folder"
    assert main(_argv(tiny_onnx, calib_npz, str(out))) == 0, "an earlier build is replaced"
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("out", [".", "..", "../work/"])
def test_the_current_folder_or_one_holding_it_is_refused(
    out: str,
    tiny_onnx: Path,
    calib_npz: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    here = tmp_path / "up" / "work"
    here.mkdir(parents=True)
    monkeypatch.chdir(here)
    assert main(_argv(tiny_onnx, calib_npz, out)) == 2
    assert "the current folder or one holding it" in capsys.readouterr().err
    assert os.listdir(here) == [] and os.listdir(here.parent) == ["work"], "nothing written, no hidden folder"


def test_a_file_is_refused_before_any_work(
    tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    assert main(_argv(tiny_onnx, calib_npz, str(out))) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and out.read_text() == "x"
