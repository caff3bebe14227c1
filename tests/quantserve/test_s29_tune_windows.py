"""tune.json states each window and warm-up as measured, and each window lasts what was asked.

Probe pl11 fault 8: `--quick` asks a 1 s warm-up and 3 s windows; each window measured ~4.2 s (best.window_s 8.447
for two), because tune asked Locust for a spawn second, the warm-up and the window, from when Locust's -t counted the
spawn: its --window-time (`loadtest.recording`) opens the window once the users are spawned and warm. The trials
kept only the sum, and nothing of the warm-up. The harness is faked here (Locust's stop lag: 0.25 s).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from loadtest.recording_files import SAMPLE_COLUMNS
from quantserve.cli.tune_trials import SCRATCH_MODEL, TuneSettings
from tests.quantserve.test_s28_tune_gone import trial_server
from tests.quantserve.test_tune_limits import MB16X2, settings

STOP_LAG_S = 0.25  # Locust's window closes this long after --window-time


class Runs:
    """Locust's side of each run: its window lasts what the run asked (`duration_s`) and the stop's lag, or, given
    `ends_after`, ends that many seconds in (its model went)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ends_after: float | None = None) -> None:
        from loadtest import harness, recording_files

        self.asked: list[float] = []
        self.ends_after = ends_after
        monkeypatch.setattr(harness, "run_step", self.run_step)
        monkeypatch.setattr(
            harness, "run_pattern", lambda load, *_, **__: SimpleNamespace(results=[self.run_step(load)])
        )
        monkeypatch.setattr(recording_files, "read_window", lambda *_: self.window)
        monkeypatch.setattr(recording_files, "read_latencies", lambda _, start, end: served(start, end))
        monkeypatch.setattr(recording_files, "read_unanswered", lambda *_: np.zeros((0, 2)))

    def run_step(self, load: Any, *_: Any, **__: Any) -> Any:
        from loadtest.percentiles import LatencySummary
        from loadtest.results import LoadResult

        self.asked.append(load.duration_s)
        start = 100.0 * len(self.asked)
        span = load.duration_s + STOP_LAG_S if self.ends_after is None else self.ends_after
        self.window = SimpleNamespace(start=start, end=start + span)
        latency = LatencySummary.from_samples(np.full(100, 2.0))
        return LoadResult(SCRATCH_MODEL, load.url, "closed", 4, span, 100, 0, 100 / span, 100 / span, latency)


def served(start: float, end: float) -> np.ndarray:
    """500 requests a second, 2 ms each, all served (recording_files' columns: end, latency ms, ok, then 0s)."""
    ends = np.arange(start, end, 0.002)
    rows = np.zeros((ends.size, SAMPLE_COLUMNS))
    rows[:, 0], rows[:, 1], rows[:, 2] = ends, 2.0, 1.0
    return rows


def test_each_window_lasts_what_was_asked_and_the_trial_records_each_as_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = Runs(monkeypatch)
    bench = trial_server(tmp_path)
    measured = bench.run(MB16X2)
    asked = bench.settings.warmup_s + bench.settings.window_s  # --quick: 1 s warm-up, 3 s window
    assert runs.asked == [asked, asked]  # before: 5.0 each, a spawn second Locust no longer counts in the window
    window = bench.settings.window_s + STOP_LAG_S  # its own length, from the load result, less the warm-up
    assert measured.windows == [{"warmup_s": 1.0, "window_s": window}] * 2
    assert measured.window_s == 2 * window and measured.to_json()["windows"] == measured.windows
    document = bench.settings.to_json()  # what was asked, beside the trials' measured windows
    assert (document["warmup_s"], document["window_s"], document["name"]) == (1.0, 3.0, "m")


def test_a_window_cut_in_its_warm_up_records_the_warm_up_it_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantserve.cli.tune_server import measure_window

    Runs(monkeypatch, ends_after=0.5)  # inside the 1 s warm-up
    samples = measure_window(settings(tmp_path, users=4), "127.0.0.1:1", SCRATCH_MODEL, tmp_path / "w", None, 3.0)
    assert samples.windows == ((0.5, 0.0),) and samples.seconds == 0.0


def test_the_re_measure_lasts_a_trial_s_warm_up_and_two_windows_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantserve.cli import tune_winner

    runs = Runs(monkeypatch)
    monkeypatch.setattr("serving.server.TritonServer", FakeServer)
    monkeypatch.setattr("serving.server_options.ServerOptions", SimpleNamespace(on_free_ports=lambda *_, **__: None))
    tune_settings: TuneSettings = settings(tmp_path, users=4)
    best = tune_winner.Trial(MB16X2, 100.0, 1.0, 2.0, 0, 100.0, requests=600, window_s=6.0)
    check = tune_winner.remeasure(tune_settings, best, tmp_path)
    assert runs.asked == [7.0]  # 1 s + 2 x 3 s; before: 8.0
    assert check["planned_window_s"] == 7.0 and check["window_s"] == 7.0 + STOP_LAG_S


class FakeServer:
    grpc_url, pid = "127.0.0.1:1", None

    def __init__(self, *_: Any) -> None:
        pass

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *_: Any) -> None:
        pass
