"""Library chatter stays out of the terminal: ONNX Runtime's advice and other libraries' logging go to a log file."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from quantserve.cli.library_log import LOG_ENV, PRE_PROCESSING_NOTE, library_log

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "tests" / "assets"
# quantserve optimize, with ORT's own pre-processing failing as it does on graphs its symbolic shape
# inference gives up on: quantize_static then logs "Please consider to run pre-processing…" on the root logger
OPTIMIZE = """
import sys
import onnxruntime.quantization.shape_inference as shape_inference

def gives_up(*args, **kwargs):
    raise RuntimeError("symbolic shape inference gave up")

shape_inference.quant_pre_process = gives_up
from quantserve.cli import main
sys.exit(main(sys.argv[1:]))
"""
LIBRARY_MARKS = ("WARNING", "Warning", "warnings.warn", "Please consider", "onnxslim", "[W:", "Traceback")


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(ASSETS))
    try:
        import make_tiny_models
    finally:
        sys.path.remove(str(ASSETS))
    return make_tiny_models.write_tiny_onnx(tmp_path / "tiny.onnx"), make_tiny_models.write_digits_like_npz(
        tmp_path / "calib.npz", samples=40
    )


def _env(tmp_path: Path) -> dict[str, str]:
    # the repository first: ORT's quantization package appends its `transformers` folder (which holds an
    # `optimizer.py`) to sys.path, and the editable install resolves `optimizer` only after the path
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    cache = str(tmp_path / "cache")
    return {**os.environ, LOG_ENV: str(tmp_path / "log"), "QUANTSERVE_CACHE_DIR": cache, "PYTHONPATH": pythonpath}


def _optimize(tmp_path: Path, model: Path, calib: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = _env(tmp_path)
    # 8 held-out rows judged on the rate seen: the thin-evidence note is among the tool's own lines
    argv = ["optimize", str(model), "--calib", str(calib), "--out", str(tmp_path / "out"), "--skip-timing"]
    argv += ["--allow-thin-evidence", *extra]
    return subprocess.run(
        [sys.executable, "-c", OPTIMIZE, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )


def test_optimize_keeps_library_warnings_in_the_log_file(tmp_path: Path, tiny: tuple[Path, Path]) -> None:
    done = _optimize(tmp_path, *tiny)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("quantserve: ") for line in lines), done.stderr  # only the tool's own words
    assert not any(mark in done.stderr for mark in LIBRARY_MARKS), done.stderr
    # the tool's own notes: the library's pre-processing advice, where the log went, and (tiny data) how few
    # held-out rows the top-1 agreement was seen on
    assert f"quantserve: note: {PRE_PROCESSING_NOTE}" in lines and len(lines) == 3, done.stderr
    assert "held-out rows shows only" in lines[0]
    log = (tmp_path / "log" / "quantserve.log").read_text()
    assert "Please consider to run pre-processing before quantization" in log and "quantserve optimize" in log


def test_json_stdout_is_one_document_and_quiet_drops_the_notes(tmp_path: Path, tiny: tuple[Path, Path]) -> None:
    done = _optimize(tmp_path, *tiny, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verification"]["holds"] is True
    quiet = subprocess.run(
        [
            sys.executable,
            "-c",
            OPTIMIZE,
            "--quiet",
            "optimize",
            str(tiny[0]),
            "--calib",
            str(tiny[1]),
            "--out",
            str(tmp_path / "q"),
            "--skip-timing",
            "--allow-thin-evidence",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env=_env(tmp_path),
    )
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_logging_and_warnings_are_routed_then_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_ENV, str(tmp_path))
    root = logging.getLogger()
    before = root.handlers[:]
    with library_log("test") as captured:
        # a logger nobody configured: earlier tests quiet "onnxslim" (level) and Locust's dictConfig
        # disables the loggers that existed then
        logging.getLogger("a_library_never_configured").warning("slimmed %d nodes", 3)
        warnings.warn("a library's deprecation", DeprecationWarning, stacklevel=1)
    assert root.handlers == before
    assert captured.records == 2 and captured.lines() == [
        f"2 library log messages kept in {tmp_path / 'quantserve.log'} (its lines marked pid {os.getpid()})"
    ]
    text = (tmp_path / "quantserve.log").read_text()
    assert "a_library_never_configured WARNING slimmed 3 nodes" in text and "a library's deprecation" in text


def test_nothing_said_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_ENV, str(tmp_path / "log"))
    with library_log("test") as captured:
        pass
    assert captured.lines() == [] and not (tmp_path / "log").exists()
