"""`quantserve tune` cut by Ctrl-C or SIGTERM (session 30, issue 11): what tune.json and tune.html say of it.

A cut during a trial (Locust still spawning its users, or in its window) drops that trial: tune.json holds the
trials measured before it. Its record read as a failure: "the search's figures: the confirmation run failed" (none
ran), and a cut before the first trial ended "no configuration was measured: the best failed (not measured: …)". Now
both say the interrupt. No server here: the progress is given, as the search leaves it.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

import pytest

from quantserve.cli.tune_interrupted import TuneProgress, interrupted
from quantserve.cli.tune_trials import Trial, TuneSettings

CUT_SEARCH = "the search's figures: interrupted during the search, nothing was confirmed"


def _progress(tmp_path: Path, trials: list[Trial]) -> TuneProgress:
    out = tmp_path / "out"
    out.mkdir(parents=True)
    settings = TuneSettings({"": tmp_path / "build"}, tmp_path / "d.npz", 50.0, tmp_path / "repo", "m", out, quick=True)
    return TuneProgress(settings, time.monotonic(), trials=trials)


def _written(tmp_path: Path) -> tuple[dict, str]:
    out = tmp_path / "out"
    return json.loads((out / "tune.json").read_text()), html.unescape((out / "tune.html").read_text())


def test_a_cut_before_the_first_trial_ended_reads_as_interrupted_not_failed(tmp_path: Path) -> None:
    progress = _progress(tmp_path, [])
    with pytest.raises(KeyboardInterrupt) as stop:
        raise interrupted(progress)
    assert "the 0 trial(s) measured are in" in str(stop.value)
    document, page = _written(tmp_path)
    assert document["interrupted"] and document["trials"] == [] and document["search"]["failed"] == 0
    assert document["slo_missed"] == (
        "no configuration was measured: interrupted during the search, before its first trial ended"
    )
    assert "failed" not in document["slo_missed"] and "the best failed" not in page
    assert CUT_SEARCH in page and "the confirmation run failed" not in page


def test_a_cut_after_a_trial_says_the_search_was_cut_not_that_the_confirmation_failed(tmp_path: Path) -> None:
    baseline = _progress(tmp_path, []).settings.baseline()
    measured = Trial(baseline, 100.0, 5.0, 9.0, 0, 100.0, requests=600, window_s=6.0)
    interrupted(_progress(tmp_path / "cut", [measured]))
    document, page = _written(tmp_path / "cut")
    assert document["interrupted"] and len(document["trials"]) == 1 and document["search"]["failed"] == 0
    assert CUT_SEARCH in page and "the confirmation run failed" not in page
