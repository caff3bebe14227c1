from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from quantserve.cli.commands import optimize as optimize_command
from quantserve.errors import QuantserveError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="quantserve")
    optimize_command.register(parser.add_subparsers())
    return parser.parse_args(["optimize", *argv])


def test_optimize_prints_tables_and_writes_the_build(tiny_onnx: Path, calib_npz: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "build" / "tiny"
    args = _parse([str(tiny_onnx), "--calib", str(calib_npz), "--out", str(out), "--method", "percentile"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    for text in ("calibrate", "percentile", "nodes 6 → 5", "top1_agreement"):
        assert text in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"][2]["method"] == "percentile"


def test_unknown_target_is_one_line(tiny_onnx: Path, calib_npz: Path, tmp_path: Path) -> None:
    args = _parse([str(tiny_onnx), "--calib", str(calib_npz), "--out", str(tmp_path / "o"), "--target", "fpga"])
    with pytest.raises(QuantserveError, match="unknown target 'fpga'; choose one of: embedded, onnxruntime, tensorrt"):
        args.func(args)
    assert not (tmp_path / "o").exists()
