"""A `.npy` given as `--data`/`--calib` (one array, no input names) is refused in one line naming the fix: it ended
in numpy's traceback "'numpy.ndarray' object does not support the context manager protocol" in optimize, infer,
loadtest and evaluate, which all read data through `load_npz`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantserve.artifact import TensorSpec
from quantserve.data import load_npz
from quantserve.errors import QuantserveError


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "x_plain.npy"
    np.save(path, np.zeros((4, 16), np.float32))
    return path


def test_a_npy_file_is_one_line_with_the_npz_to_save_instead(npy: Path) -> None:
    with pytest.raises(QuantserveError) as raised:
        load_npz(npy)
    assert str(raised.value) == (
        f"{npy} holds one array, not named inputs: save an .npz named by the input, e.g. "
        f"np.savez('{npy.with_suffix('.npz')}', <input name>=array)"
    )


def test_the_models_input_names_are_given_where_known(npy: Path) -> None:
    one = [TensorSpec("x", "float32", ("batch", 16))]
    with pytest.raises(QuantserveError, match=r"np\.savez\('.*x_plain\.npz', x=array\)$"):
        load_npz(npy, one)
    two = [*one, TensorSpec("mask", "int64", ("batch", 16))]
    with pytest.raises(QuantserveError, match=r"np\.savez\('.*x_plain\.npz', x=x_array, mask=mask_array\)$"):
        load_npz(npy, two)


def test_optimize_says_it_in_one_line(npy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from quantserve import cli

    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    argv = ["optimize", str(model), "--calib", str(npy), "--out", str(tmp_path / "b"), "--precision", "fp32"]
    assert cli.main([*argv, "--skip-timing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"quantserve: error: {npy} holds one array, not named inputs") and err.count("\n") == 1, err
