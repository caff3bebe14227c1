"""Environment variables set to junk are said as such (session 41): `QUANTSERVE_CACHE_MAX_GB=junk` was read
mid-search and reported as "no INT8 scheme could be built … deploy fp32", exit 1; a `QUANTSERVE_LOG_DIR` through a
file was said to keep the library messages it lost."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from quantserve.cli import main
from quantserve.cli.library_log import library_log


def test_a_junk_cache_size_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "assets"))
    import make_tiny_models

    model = make_tiny_models.write_tiny_onnx(tmp_path / "tiny.onnx")
    calib = make_tiny_models.write_digits_like_npz(tmp_path / "calib.npz", samples=40)
    monkeypatch.setenv("QUANTSERVE_CACHE_MAX_GB", "junk")
    assert main(["optimize", str(model), "--calib", str(calib), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "QUANTSERVE_CACHE_MAX_GB='junk': expected a size in GB" in err and "deploy fp32" not in err
    assert not (tmp_path / "b").exists()


def test_a_log_folder_through_a_file_is_said_not_to_keep_the_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    monkeypatch.setenv("QUANTSERVE_LOG_DIR", str(blocker))
    with library_log("test") as captured:
        logging.getLogger("some.library").warning("chatter")
    [line] = captured.lines()
    assert line.startswith(f"1 library log messages not kept: {blocker}/quantserve.log: ")
    assert "$QUANTSERVE_LOG_DIR" in line


def test_a_junk_port_range_in_the_environment_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QUANTSERVE_PORT_RANGE", "junk")
    argv = ["loadtest", "--url", "127.0.0.1:1", "--model", "m", "--data", str(tmp_path / "d.npz")]
    assert main(argv) == 2
    assert "QUANTSERVE_PORT_RANGE='junk': --port-range 'junk' is not a port range" in capsys.readouterr().err
