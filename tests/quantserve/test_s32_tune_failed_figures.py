"""A failed tune trial keeps no figures (session 32, issue 11 leftover 1).

A trial the server died in twice was written to tune.json with `requests` 6000, `window_s` 6.0 and its first
window's 1000 req/s beside `throughput_rps` 0; a trial its model's going away cut short kept 2504 requests and 4
failed beside 0 req/s. Figures that contradict each other: a failed trial now has none (no rate, latency, request
count or window), as one whose deploy failed, and tune.json, tune.html's table and the terminal's line and table
all say it failed. No server: the windows are given (the stand-ins of the session-28 and session-31 tests).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from quantserve.cli import tune as tune_module
from quantserve.cli.tune_report import render_html
from quantserve.cli.tune_result import TuneResult
from quantserve.cli.tune_trials import Trial
from tests.quantserve.test_s28_tune_gone import Windows, trial_server
from tests.quantserve.test_s31_tune_faults import MB4, _bench

NO_FIGURES = {
    "throughput_rps": 0.0,
    "goodput_rps": 0.0,
    "requests": 0,
    "failed_requests": 0,
    "window_s": 0.0,
    "windows": [],
    "first_window": {},
    "commonest_failure": "",
    "commonest_failure_count": 0,
}


def _no_figures(trial: Trial) -> None:
    document = trial.to_json()
    assert {key: document[key] for key in NO_FIGURES} == NO_FIGURES
    assert all(math.isnan(document[key]) for key in ("p50_ms", "p99_ms", "fastest_ms", "mean_ms"))


def _page_and_table(trial: Trial, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> tuple[str, str]:
    """tune.html's row for the failed trial (the second), and the terminal's trials table (its rows wrap)."""
    from quantserve.cli.commands.tune import print_summary

    base = Trial(trial.config, 100.0, 5.0, 9.0, 0, 100.0, requests=600, window_s=6.0)
    document = TuneResult([base, trial], base, base, 1.0).to_json()
    rows = render_html(document).split("<tr class=")
    print_summary(document, tmp_path)
    return rows[-1], capsys.readouterr().out


def test_a_trial_the_server_died_in_twice_keeps_no_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: requests 6000, window_s 6.0, windows of 3 s each and first_window 1000 req/s beside 0 req/s."""
    failed = _bench(tmp_path, [None, "killed by SIGKILL", "killed by SIGSEGV"]).run(MB4)
    _no_figures(failed)
    deaths = "tritonserver killed by SIGSEGV during this trial, and killed by SIGKILL in its first attempt (restarted)"
    assert failed.error == deaths and not failed.pruned
    assert tune_module.describe(failed) == f"failed ({deaths})"
    row, table = _page_and_table(failed, capsys, tmp_path)
    assert f"({deaths})" in row and "<td>error</td>" in row  # before: "<td>0</td>" failed requests
    assert "error" in table


def test_a_trial_cut_short_by_its_model_going_away_keeps_no_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: requests 2504 and 4 failed beside 0 req/s; the cut line keeps how many were answered."""
    Windows(monkeypatch, [None, 3.0])  # the model gone 2 s into window 2's measured part
    cut = trial_server(tmp_path).run(MB4)
    _no_figures(cut)
    assert cut.cut_short and "(after 2500 requests answered;" in cut.error
    assert tune_module.describe(cut) == cut.error
    row, table = _page_and_table(cut, capsys, tmp_path)
    assert "<td>cut short</td>" in row and "cut short" in table
