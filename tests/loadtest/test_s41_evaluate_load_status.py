"""`evaluate --load-duration`: a load whose requests failed exits 1, as `loadtest` and `report` do (session 41: a
tritonserver SIGKILLed mid-window, 337 of 3930 requests failed, and evaluate exited 0)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from test_load_results import make_result

from loadtest.load_run import LoadRun
from quantserve.cli.commands import evaluate as evaluate_command
from quantserve.cli.commands import loadtest as loadtest_command


def test_a_failed_side_by_side_load_fails_evaluate(capsys: pytest.CaptureFixture[str]) -> None:
    failed = make_result("m_int8", 4, 1)
    failed.failed_requests = 337
    runs = [LoadRun("m_fp32", [make_result("m_fp32", 4, 0)]), LoadRun("m_int8", [failed])]
    assert evaluate_command.load_status(runs) == 1
    err = capsys.readouterr().err
    assert "quantserve evaluate: 337 of 1000 requests failed (notes above, report written); exit 1" in err
    assert "--allow-failures" not in err, "evaluate has no such flag"
    assert evaluate_command.load_status(runs[:1]) == 0
    assert evaluate_command.load_status([]) == 0


def test_the_side_by_side_load_returns_its_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = LoadRun("a", [make_result("a", 2, 3)])
    monkeypatch.setattr(loadtest_command, "run_with_progress", lambda settings, args: run)
    monkeypatch.setattr(loadtest_command, "resolve_metrics_url", lambda args: None)
    args = argparse.Namespace(
        url="127.0.0.1:1", data=tmp_path / "d.npz", load_users=2, json=True, request_timeout=30.0,
        tls_ca=None, tls_cert=None, tls_key=None,
    )  # fmt: skip
    assert evaluate_command.load_side_by_side(args, ["a"], 3.0) == [run]
