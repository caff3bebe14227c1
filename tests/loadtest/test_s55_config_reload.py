"""A load run whose model's served config changed in its window says so: the config is read again at its end.

Measured (session 55): a same-version config reload 6 s into a 15 s run (instances 1 → 2, queue delay 500 → 2000 µs)
went unsaid: 2773 requests, no note, and the result's `identity.config` said "max batch 32, queue 500 µs, 1 instance"
(read at the start) while Triton served 2 instances and 2000 µs at the end.
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

STARTED = "2026-12-06T07:00:00Z"
BEFORE, AFTER = "max batch 32, queue 500 µs, 1 instance", "max batch 32, queue 2000 µs, 2 instances"


def test_a_change_of_the_served_config_is_named_with_both() -> None:
    identity = RunIdentity(STARTED, ["1"], config=BEFORE, config_at_end=AFTER)
    assert identity.config_words() == f"{BEFORE} → {AFTER}"
    assert identity.config_note("m") == (
        f"model 'm' served config changed during the run ({BEFORE} → {AFTER}): it was read at the start, and its "
        "figures are of both"
    )


@pytest.mark.parametrize("at_end", [BEFORE, None])  # the same, or not read (the server gone, an older file)
def test_no_change_or_none_read_says_nothing(at_end: str | None) -> None:
    identity = RunIdentity(STARTED, ["1"], config=BEFORE, config_at_end=at_end)
    assert identity.config_words() == BEFORE and identity.config_note("m") is None


def test_a_run_reads_the_config_again_at_its_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness, "run_identity", lambda settings: (RunIdentity(STARTED, ["1"], config=BEFORE), None))
    monkeypatch.setattr(harness, "run_step", lambda *_: _step())
    monkeypatch.setattr(harness, "versions_now", lambda url, model, tls: ["1"])
    monkeypatch.setattr(harness, "config_now", lambda url, model, tls: AFTER)
    monkeypatch.setattr(LoadSettings, "check", lambda self: None)
    harness.run_pattern(LoadSettings("127.0.0.1:1", "m", tmp_path / "d.npz", ClosedLoop(2), 5.0), tmp_path / "out")
    (saved,) = (LoadRun.load(path) for path in (tmp_path / "out").glob("load-*.json"))
    assert saved.identity is not None and saved.identity.config_at_end == AFTER
    assert saved.identity.config_note("m") is not None and saved.identity.versions_note("m", None) is None


def test_the_ab_table_shows_the_change(tmp_path: Path) -> None:
    _naive_and_tuned(tmp_path, config_at_end=AFTER)
    md = render(tmp_path)[0].read_text()
    table = md.split(AB_HEADER, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert table[1].startswith(f"| 4 users | mlp_fp32_tuned | 2; max batch 32, queue 500 µs, 2 instances → {AFTER} |")
