"""`quantserve tune` cut by Ctrl-C or SIGTERM during the confirmation run (session 32, issue 11 leftover 3).

A cut inside a search trial keeps it, partial (session 31); one inside the confirmation run dropped its runs: the
baseline's, measured whole, and the pick's up to the cut were in neither tune.json nor the page. Now tune.json's
`confirmation` keeps them (the cut one marked `interrupted`, its windows as measured), said on the page and in the
interrupt's line, and `best` and `baseline` stay the search's own figures: a partial run is never the claim. No
server: the windows are given (the session-31 stand-in server, its confirmation's runs cut).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from quantserve.cli import tune as tune_module
from quantserve.cli.tune_interrupted import TuneInterrupted
from quantserve.cli.tune_trials import Samples
from tests.quantserve.test_s31_tune_window_cut import CutServer, _settings, _window

BASELINE_RUNS, PICK_RUNS = (1, 3), (2, 4)  # the trial server's count: the search's two trials, then the confirmation


class ConfirmationCut(CutServer):
    """The baseline serves 3000 requests a window, the pick 4000 (it wins the search); the window `cut_at` (count,
    index) is cut by a bare KeyboardInterrupt, as a Ctrl-C outside Locust's run raises."""

    cut_at = (4, 2)

    def window(self, index: int, window_s: float | None = None) -> Samples:
        if (self.count, index) == self.cut_at:
            raise KeyboardInterrupt
        return _window(4000 if self.count in PICK_RUNS else 3000, 3.06)


def _tune_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut_at: tuple[int, int]) -> tuple[dict, str]:
    monkeypatch.setattr(ConfirmationCut, "cut_at", cut_at)
    monkeypatch.setattr(tune_module, "TrialServer", ConfirmationCut)
    monkeypatch.setattr(tune_module, "check_settings", lambda settings: None)
    settings = replace(_settings(tmp_path), max_trials=1)  # the baseline and one trial: the search's pick
    with pytest.raises(TuneInterrupted) as stop:
        tune_module.tune(settings, say=lambda line: None)
    document = json.loads((settings.out / "tune.json").read_text())
    return document, stop.value.line


def test_a_cut_in_the_pick_s_confirmation_keeps_both_runs_and_claims_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document, line = _tune_cut(tmp_path, monkeypatch, (4, 2))
    assert document["interrupted_during"] == "the confirmation run" and not document["search"]["confirmed"]
    confirmation = document["confirmation"]  # before: {}
    baseline, pick = confirmation["baseline"], confirmation["pick"]
    assert not baseline["interrupted"] and baseline["requests"] == 6000  # measured whole
    assert pick["interrupted"] and pick["requests"] == 4000 and pick["windows"] == [{"warmup_s": 1.0, "window_s": 3.06}]
    assert confirmation["interrupted"] and confirmation["kept"] == ""
    # the claim stays the search's: its pick and its baseline, as measured in the search
    assert document["best"] == document["search_best"] == document["trials"][1]
    assert document["baseline"] == document["trials"][0]
    assert "and the confirmation run as far as it got (partial: not the claim) are in" in line
    page = (tmp_path / "out" / "tune.html").read_text()
    assert "The confirmation run as far as it got (not the claim): baseline no batching ×1: 980.4 good req/s" in page
    assert "(partial: 3.06 s measured)" in page


def test_a_cut_in_the_baseline_s_confirmation_keeps_it_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document, _ = _tune_cut(tmp_path, monkeypatch, (3, 2))
    confirmation = document["confirmation"]
    assert "pick" not in confirmation and confirmation["baseline"]["interrupted"]
    assert confirmation["baseline"]["requests"] == 3000
    assert document["baseline"] == document["trials"][0]
