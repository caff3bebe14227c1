"""`infer --out` that resolves to the `--data` file is refused before any request: `--data d.npz --out d.npz`
replaced the inputs with the outputs and exited 0."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantserve import cli


class NoServer:
    """Stands in for `TritonRunner`: any request is a test failure."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> NoServer:
        raise AssertionError("a request was made")

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import serving.triton_runner

    monkeypatch.setattr(serving.triton_runner, "TritonRunner", NoServer)
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3), np.float32))
    return path


def _out_same_as(data: Path, tmp_path: Path, how: str) -> Path:
    if how == "no suffix":  # numpy appends .npz: the same file
        return data.with_suffix("")
    if how == "through ..":
        return tmp_path / "sub" / ".." / data.name
    link = tmp_path / "link"
    link.mkdir()
    if how == "hard link":
        os.link(data, link / "d.npz")
    else:
        (link / "d.npz").symlink_to(data)
    return link / "d.npz"


@pytest.mark.parametrize("how", ["same path", "no suffix", "through ..", "hard link", "symlink"])
def test_out_that_is_the_data_file_is_refused_before_any_request(
    data: Path, tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = data if how == "same path" else _out_same_as(data, tmp_path, how)
    before = data.read_bytes()
    argv = ["infer", "--url", "127.0.0.1:18399", "--model", "m", "--data", str(data), "--out", str(out)]
    assert cli.main(argv) == 2
    shown = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
    assert capsys.readouterr().err == (
        f"quantserve: error: --out {shown} is the --data file: saving would overwrite the inputs; give another file, "
        f"e.g. --out {shown.with_name('d-outputs.npz')}\n"
    )
    assert data.read_bytes() == before
