"""`evaluate --out RS` while another load run writes into RS: refused up front in one line, before any request and
with nothing written. Before, evaluate scored the models and wrote accuracy.json into RS (the other run's report then
showed it as its own), then its --load-duration step stopped on the folder's lock with exit 2, hiding exit 1."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from loadtest import evaluator
from loadtest.recording_files import LOCK_FILE, results_folder_held
from quantserve.cli import main


def test_evaluate_into_a_folder_a_load_run_holds_is_refused_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scored: list[Any] = []

    def score(*args: Any, **kwargs: Any) -> None:
        scored.append(args)
        raise AssertionError("evaluate sent its requests into a folder another load run holds")

    monkeypatch.setattr(evaluator, "evaluate_accuracy", score)
    out = tmp_path / "RS"
    argv = ["evaluate", "--url", "127.0.0.1:1", "--models", "a,b", "--reference", "a", "--data", "x.npz"]
    with results_folder_held(out):  # another load run writing its results here
        status = main([*argv, "--out", str(out), "--load-duration", "5s"])
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing of evaluate's
    assert (status, scored) == (2, [])
    assert capsys.readouterr().err.strip() == (
        f"quantserve: error: {out}: another load run (pid {os.getpid()}) is writing its results here; give this one "
        "another --out"
    )
    assert not out.exists()  # the holder made the folder and wrote nothing: it goes with the lock
