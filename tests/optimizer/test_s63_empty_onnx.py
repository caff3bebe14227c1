"""A 0-byte .onnx given to optimize. Probe D (session 63): refused "ONNX checker rejected the model (The model does not
have an ir_version set properly.)", as if the export were wrong; the file was empty. Now said so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from optimizer.onnx_input import check_onnx
from quantserve.cli import main
from quantserve.errors import QuantserveError


def test_an_empty_onnx_file_is_named_empty(tmp_path: Path) -> None:
    empty = tmp_path / "model.onnx"
    empty.write_bytes(b"")
    with pytest.raises(QuantserveError) as refused:
        check_onnx(empty, tmp_path / "saved.onnx")
    assert str(refused.value) == f"{empty}: the file is empty (0 bytes), not an ONNX model"


def test_optimize_says_the_file_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "model.onnx"
    empty.write_bytes(b"")
    np_file = tmp_path / "eval.npz"
    np.savez(np_file, x=np.zeros((4, 16), np.float32))
    code = main(["optimize", str(empty), "--precision", "fp32", "--eval", str(np_file), "--out", str(tmp_path / "b")])
    assert code == 2
    assert f"{empty}: the file is empty (0 bytes), not an ONNX model" in capsys.readouterr().err
