"""`quantserve tune` cut by Ctrl-C or SIGTERM inside a trial's second window (session 31, issue 11).

Before: the trial was dropped whole, its first window (measured, complete) lost from tune.json ("the 0 trial(s)
measured"). Now the trial is kept from the windows measured up to the interrupt, the one in progress up to it, marked
`interrupted`, its figures per second of what was measured, and never ranked as a complete trial. No server: the
windows are given (`TrialServer.window` faked), and the trial server itself for the tune.json test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantserve.cli import tune as tune_module
from quantserve.cli.tune_interrupted import TuneInterrupted
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import Samples, Trial, TuneSettings, best_trial

SLO_MS = 50.0


def _settings(tmp_path: Path) -> TuneSettings:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    return TuneSettings({"": tmp_path / "b"}, tmp_path / "d.npz", SLO_MS, tmp_path / "repo", "m", out, quick=True)


def _window(requests: int, seconds: float, latency_ms: float = 10.0) -> Samples:
    samples = Samples(np.full(requests, latency_ms), np.ones(requests, bool), seconds)
    samples.windows = ((1.0, seconds),)
    return samples


def _server(tmp_path: Path, second: BaseException) -> TrialServer:
    """A TrialServer with no tritonserver: window 1 measures 3000 requests in 3.06 s, window 2 raises `second`."""
    server = TrialServer.__new__(TrialServer)
    server.settings, server.out, server.count = _settings(tmp_path), tmp_path / "out", 1

    def window(index: int, window_s: float | None = None) -> Samples:
        if index == 1:
            return _window(3000, 3.06)
        raise second

    server.install = lambda config: None  # type: ignore[method-assign]
    server.window = window  # type: ignore[method-assign]
    return server


def test_a_cut_in_the_second_window_keeps_the_first_and_the_second_up_to_the_cut(tmp_path: Path) -> None:
    from quantserve.cli.tune_interrupted import TrialInterrupted
    from quantserve.cli.tune_server import WindowInterrupted

    server = _server(tmp_path, WindowInterrupted(_window(1200, 1.36, latency_ms=80.0)))
    config = server.settings.baseline()
    with pytest.raises(TrialInterrupted) as stop:
        server._measure(config, [])
    trial = stop.value.trial
    assert trial is not None and trial.interrupted and trial.config == config and not trial.pruned
    assert trial.requests == 4200 and trial.window_s == pytest.approx(4.42)
    assert [w["window_s"] for w in trial.windows] == [3.06, 1.36]
    assert trial.throughput_rps == pytest.approx(4200 / 4.42)  # per second of what was measured
    assert trial.goodput_rps == pytest.approx(3000 / 4.42)  # the cut window's 80 ms requests miss the 50 ms SLO


def test_a_cut_before_the_second_window_recorded_anything_keeps_the_first(tmp_path: Path) -> None:
    from quantserve.cli.tune_interrupted import TrialInterrupted
    from quantserve.cli.tune_server import WindowInterrupted

    for cut in (WindowInterrupted(None), KeyboardInterrupt()):  # nothing recorded yet; a cut outside Locust's run
        server = _server(tmp_path, cut)
        with pytest.raises(TrialInterrupted) as stop:
            server._measure(server.settings.baseline(), [])
        trial = stop.value.trial
        assert trial is not None and trial.interrupted and trial.requests == 3000 and trial.window_s == 3.06


def test_an_interrupted_trial_is_never_ranked_over_a_complete_one(tmp_path: Path) -> None:
    base = _settings(tmp_path).baseline()
    complete = Trial(base, 100.0, 5.0, 9.0, 0, 100.0, requests=600, window_s=6.0)
    partial = Trial(base, 900.0, 5.0, 9.0, 0, 900.0, requests=2700, window_s=3.0, interrupted=True)
    assert best_trial([complete, partial], traced=False) is complete


class CutServer(TrialServer):
    """The real trial server's search path with no tritonserver: every window measures 3000 requests in 3.06 s, and
    the second trial's second window is cut (a bare KeyboardInterrupt, as a Ctrl-C outside Locust's run raises)."""

    def __init__(self, settings: TuneSettings, out: Path) -> None:
        self.settings, self.out, self.count = settings, out, 0

    def __enter__(self) -> CutServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def install(self, config: Any) -> None:
        pass

    def down(self) -> str | None:
        return None

    def window(self, index: int, window_s: float | None = None) -> Samples:
        if self.count == 2 and index == 2:
            raise KeyboardInterrupt
        return _window(3000, 3.06, latency_ms=10.0 if self.count == 1 else 5.0)


def test_tune_json_keeps_the_cut_trial_marked_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tune_module, "TrialServer", CutServer)
    monkeypatch.setattr(tune_module, "check_settings", lambda settings: None)
    settings = _settings(tmp_path)
    with pytest.raises(TuneInterrupted) as stop:
        tune_module.tune(settings, say=lambda line: None)
    assert "the 2 trial(s) measured are in" in stop.value.line
    document = json.loads((settings.out / "tune.json").read_text())
    assert document["interrupted"] and [t.get("interrupted") for t in document["trials"]] == [False, True]
    cut = document["trials"][1]
    assert cut["requests"] == 3000 and cut["windows"] == [{"warmup_s": 1.0, "window_s": 3.06}]
    assert cut["throughput_rps"] == pytest.approx(3000 / 3.06)
    assert document["best"]["config"] == document["trials"][0]["config"]  # the partial trial is not the best
    assert "(interrupted: partial)" in (settings.out / "tune.html").read_text()
