"""Without optuna, `quantserve tune` and the demo's tune step refuse in one line before any server starts.

Before: optuna was in neither pyproject's dependencies nor requirements-serving.txt, so the serving image had none;
`tune` started its tritonserver and failed at `import optuna` with a 20-line ModuleNotFoundError traceback, and the
demo trained, optimized and served for minutes before its tune step failed the same way (session 62)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_s27_tune_checks import build, tune_argv

from quantserve.cli import demo, main, tune

REFUSAL = (
    "tune needs the 'optuna' package, which is not installed here: pip install optuna (its pin is in "
    "requirements.lock and requirements-serving.txt)"
)


@pytest.fixture
def no_optuna(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """optuna unimportable (a None entry in sys.modules); every server or training start recorded."""
    started: list[str] = []

    def record(what: str) -> Any:
        def start(*args: Any, **kwargs: Any) -> Any:
            started.append(what)
            raise AssertionError(f"{what} started")

        return start

    monkeypatch.setitem(__import__("sys").modules, "optuna", None)
    monkeypatch.setattr(tune, "TrialServer", record("tune's tritonserver"))
    monkeypatch.setattr(demo, "train_and_optimize", record("the demo's training"))
    monkeypatch.setattr(demo, "measure", record("the demo's tritonserver"))
    return started


__all__ = ["build"]  # a fixture: a real FP32 build and its load data, so nothing else stops tune first


def test_tune_refuses_in_one_line_before_its_server(
    tmp_path: Path, build: Path, no_optuna: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(tune_argv(build, tmp_path, "--out", str(tmp_path / "out"))) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: {REFUSAL}"
    assert no_optuna == [] and not (tmp_path / "out").exists() and not (tmp_path / "repo").exists()


def test_the_demo_refuses_before_training_unless_told_no_tune(
    tmp_path: Path, no_optuna: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "out"), "--build", str(tmp_path / "build"), "--repo", str(tmp_path / "repo")]
    assert main(["demo", *out]) == 2
    assert capsys.readouterr().err.strip() == f"quantserve: error: {REFUSAL}, or run the demo with --no-tune"
    assert no_optuna == []
    with pytest.raises(AssertionError, match="the demo's training started"):
        main(["demo", "--no-tune", *out])  # without the tune step optuna is not needed: the demo goes on
