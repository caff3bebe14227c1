"""`infer --out`: the file numpy writes (`.npz` appended where missing) is the one printed; a folder is refused
before any request (it wrote DIR.npz beside the folder and said `saved … to DIR`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_runner import FakeRunner

from quantserve import cli


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    import loadtest.evaluator  # noqa: F401  imported before the patch: it binds load_npz by name, and a first import
    import quantserve.data  # under the patch kept the fake for every later test in the process (a served evaluate)
    import quantserve.runner
    import serving.triton_runner

    monkeypatch.setattr(serving.triton_runner, "TritonRunner", FakeRunner)
    data = SimpleNamespace(labels=None, batches=lambda size: [], requests=SimpleNamespace(whole=False))
    monkeypatch.setattr(quantserve.data, "load_npz", lambda path, specs, **_: data)
    monkeypatch.setattr(
        quantserve.runner, "run_batches", lambda runner, batches, whole=False, pad=False: {"logits": np.zeros((2, 3))}
    )


def infer(tmp_path: Path, out: Path) -> int:
    return cli.main(
        ["infer", "--url", "127.0.0.1:18399", "--model", "m", "--data", str(tmp_path / "d.npz"), "--out", str(out)]
    )


def test_out_without_npz_prints_the_file_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    assert infer(tmp_path, tmp_path / "out.txt") == 0
    assert (tmp_path / "out.txt.npz").is_file()
    assert capsys.readouterr().out.splitlines()[-1] == f"saved logits to {tmp_path / 'out.txt.npz'}"


def test_out_a_folder_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    assert infer(tmp_path, folder) == 2
    line = f"--out {folder} is a folder; give a file name, e.g. --out {folder / 'outputs.npz'}"
    assert capsys.readouterr().err == f"quantserve: error: {line}\n"
    assert not (tmp_path / "results.npz").exists()
