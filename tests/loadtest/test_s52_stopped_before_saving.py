"""An evaluate stopped while scoring says nothing was saved, and `report` on a folder a stopped run left holding only
its lock says so (session 52): the evaluate printed only "quantserve: interrupted"; `report` said "no load-*.json or
accuracy.json; run loadtest or evaluate first" beside a lock naming the killed run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

import loadtest.evaluator
from loadtest.recording_files import LOCK_FILE
from loadtest.report import render
from quantserve.cli import main
from quantserve.errors import QuantserveError


def test_report_on_a_folder_a_stopped_run_left_says_so(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("4242")
    with pytest.raises(QuantserveError) as caught:
        render(tmp_path)
    assert str(caught.value).endswith(
        "a run (pid 4242) worked here and stopped before saving anything (interrupted or killed): run it again"
    )


def test_report_on_a_folder_a_run_still_holds_says_so(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_FILE
    lock.write_text(str(os.getpid()))
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as `results_folder_held` holds it while the run writes
    try:
        with pytest.raises(QuantserveError, match=rf"a run \(pid {os.getpid()}\) is still writing here"):
            render(tmp_path)
    finally:
        os.close(fd)


def test_an_evaluate_stopped_while_scoring_says_nothing_was_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stopped(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(loadtest.evaluator, "evaluate_accuracy", stopped)
    out = tmp_path / "ev"
    argv = ["evaluate", "--models", "m_int8", "--reference", "m_fp32", "--data", str(tmp_path / "d.npz")]
    assert main([*argv, "--out", str(out), "--url", "127.0.0.1:9"]) == 130
    err = capsys.readouterr().err
    assert f"evaluate stopped before it finished scoring: nothing saved in {out}" in err
    assert err.rstrip().endswith("quantserve: interrupted")
    assert not out.exists()
