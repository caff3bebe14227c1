"""A load run whose model's served versions changed in its window says so: the versions are read again at its end.

Measured (session 43, probe d): a loadtest across a `serve --model-control none` restart that served a new INT8
version 2 recorded precision fp32 and versions ['1'], read at its start, though its window's end was served by 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_s27_ab import AB_HEADER, _naive_and_tuned
from test_s34_stop_after_window import _step

from loadtest import harness
from loadtest.load_pattern import ClosedLoop
from loadtest.load_run import LoadRun
from loadtest.load_settings import LoadSettings
from loadtest.report import render
from loadtest.run_identity import RunIdentity

STARTED = "2026-12-04T16:00:00Z"


def test_a_change_of_the_served_versions_is_named() -> None:
    identity = RunIdentity(STARTED, ["1"], versions_at_end=["2"])
    assert identity.versions_words() == "1 → 2"
    assert identity.versions_note("m", "fp32") == (
        "model 'm' served versions changed during the run (1 → 2): its precision fp32 and versions were read at the "
        "start, and its figures are of both"
    )


@pytest.mark.parametrize("at_end", [["1"], None])  # the same, or not read (the server gone, an older file)
def test_no_change_or_none_read_says_nothing(at_end: list[str] | None) -> None:
    identity = RunIdentity(STARTED, ["1"], versions_at_end=at_end)
    assert identity.versions_words() == "1" and identity.versions_note("m", "fp32") is None


def test_a_run_reads_the_versions_again_at_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "run_identity", lambda settings: (RunIdentity(STARTED, ["1"]), "fp32"))
    monkeypatch.setattr(harness, "run_step", lambda *_: _step())
    monkeypatch.setattr(harness, "versions_now", lambda url, model, tls: ["2"])
    settings = LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(2), 5.0)
    monkeypatch.setattr(LoadSettings, "check", lambda self: None)
    harness.run_pattern(settings, tmp_path / "out")
    (saved,) = (LoadRun.load(path) for path in (tmp_path / "out").glob("load-*.json"))
    assert saved.identity is not None and saved.identity.versions_at_end == ["2"]
    assert saved.identity.versions_note("m", saved.precision) is not None


def test_the_ab_table_shows_the_change(tmp_path: Path) -> None:
    _naive_and_tuned(tmp_path, versions_at_end=["3"])
    md = render(tmp_path)[0].read_text()
    table = md.split(AB_HEADER, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert table[1].startswith("| 4 users | mlp_fp32_tuned | 2 → 3; max batch 32, queue 500 µs, 2 instances |")
