"""`quantserve tune`'s faults from the session-31 probe (issue 11), with stand-ins for the server and its windows.

1. tritonserver killed from outside between trials 2 and 3: trial 3 was failed (goodput 0, 0 requests), never retried.
   Now a server dead before a trial is restarted first, and one that dies during a trial is restarted and the trial
   measured again; only a second death fails it. Each restart is said in tune.json and on the page.
2. a trace whose pass (20 s, a burst at 15 s) is longer than --quick's 10 s window: trials were pruned on window 1
   (no burst) against the baseline's two windows (burst included). Now window 2 is the trace's own length for every
   trial, and a trial's window 1 is pruned against the others' window 1.
3. a disk filling during the search: rc 2, no tune.json. Now tune.json holds the trials measured so far.
4. `meets_slo` counted a partial (interrupted) trial as having met the SLO.
"""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quantserve.cli import tune as tune_module
from quantserve.cli.tune_failed import TuneFailed
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import Samples, ServingConfig, Trial, TuneSettings, meets_slo, met_slo

SLO_MS = 50.0
MB4 = ServingConfig(4, (1, 2, 4), 500, 1)


def _settings(tmp_path: Path, **more: Any) -> TuneSettings:
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    return TuneSettings(
        {"": tmp_path / "b"}, tmp_path / "d.npz", SLO_MS, tmp_path / "repo", "m", out, quick=True, **more
    )


def _window(requests: int, seconds: float, latency_ms: float = 10.0) -> Samples:
    samples = Samples(np.full(requests, latency_ms), np.ones(requests, bool), seconds)
    samples.windows = ((1.0, seconds),)
    return samples


class Server:
    """tritonserver's side as `TrialServer` sees it: stop/start counted; `exit_cause` read from `deaths`."""

    def __init__(self) -> None:
        self.starts = self.stops = 0
        self.pid, self.grpc_url = 1, "127.0.0.1:1"

    def stop(self, kill: bool = False) -> None:
        self.stops += 1

    def start(self) -> None:
        self.starts += 1


def _bench(tmp_path: Path, deaths: list[str | None], settings: TuneSettings | None = None) -> TrialServer:
    """A TrialServer with no tritonserver: `down()` answers `deaths` in turn; every window serves 3000 requests."""
    bench = TrialServer.__new__(TrialServer)
    bench.settings, bench.out, bench.count = settings or _settings(tmp_path), tmp_path / "out", 0
    bench.server = Server()  # type: ignore[assignment]
    answers = iter(deaths)
    bench.down = lambda: next(answers, None)  # type: ignore[method-assign]
    bench.install = lambda config: None  # type: ignore[method-assign]
    bench.window = lambda index, window_s=None: _window(3000, 3.0)  # type: ignore[method-assign]
    return bench


# --- 1. a server death is not the configuration's until it dies again ------------------------------------------


def test_a_server_killed_before_the_trial_is_restarted_and_the_trial_measured(tmp_path: Path) -> None:
    """The probe's case: killed between trials 2 and 3; before, trial 3 failed (goodput 0) on the dead server."""
    bench = _bench(tmp_path, ["killed by SIGKILL", None])
    measured = bench.run(MB4)
    assert not measured.error and measured.requests == 6000 and measured.goodput_rps == pytest.approx(1000.0)
    assert bench.server.starts == 1  # type: ignore[attr-defined]
    assert measured.server_restarts == [
        "tritonserver killed by SIGKILL before this trial: restarted, then the trial measured"
    ]
    assert "killed by SIGKILL before this trial" in tune_module.describe(measured)


def test_a_server_that_dies_once_during_the_trial_is_restarted_and_the_trial_retried(tmp_path: Path) -> None:
    bench = _bench(tmp_path, [None, "killed by SIGKILL", None])
    measured = bench.run(MB4)
    assert not measured.error and measured.goodput_rps > 0 and bench.server.starts == 1  # type: ignore[attr-defined]
    assert measured.server_restarts == [
        "tritonserver killed by SIGKILL during its first attempt: restarted and the trial measured again"
    ]


def test_a_server_that_dies_again_in_the_retry_fails_the_trial_as_the_configuration_s(tmp_path: Path) -> None:
    bench = _bench(tmp_path, [None, "killed by SIGKILL", "killed by SIGSEGV"])
    failed = bench.run(MB4)
    assert (
        failed.error
        == "tritonserver killed by SIGSEGV during this trial, and killed by SIGKILL in its first attempt (restarted)"
    )
    assert failed.goodput_rps == 0.0 and math.isnan(failed.p99_ms) and not failed.pruned and not failed.server_restarts
    assert bench.server.starts == 2  # type: ignore[attr-defined]  # restarted for the next trial too


def test_a_restart_is_in_tune_json_and_on_the_page(tmp_path: Path) -> None:
    from quantserve.cli.tune_report import render_html
    from quantserve.cli.tune_result import TuneResult

    bench = _bench(tmp_path, ["killed by SIGKILL", None])
    measured = bench.run(MB4)
    document = TuneResult([measured], measured, measured, 1.0, bench.settings).to_json()
    assert document["trials"][0]["server_restarts"] == measured.server_restarts
    assert "killed by SIGKILL before this trial: restarted" in render_html(document)


# --- 2. a trace longer than the window: trials compared on like windows -----------------------------------------


def _late_trace(tmp_path: Path) -> Path:
    """The probe's t_late.csv: one arrival a second for 11 s, 300 at 15.0-15.6 s, one at 20 s (a 20 s pass)."""
    stamps = [*range(11), *(15.0 + 0.002 * i for i in range(300)), 20]
    path = tmp_path / "t_late.csv"
    path.write_text("timestamp\n" + "\n".join(f"{s:.4f}" for s in stamps) + "\n")
    return path


def test_a_trace_trial_is_pruned_on_window_1_against_the_others_window_1(tmp_path: Path) -> None:
    """The baseline's two windows held the burst (2.3 good/s), its window 1 did not (1/s, as every trial's): a trial
    whose window 1 matches it is not clearly worse (before: pruned at 1/s < 0.6 x 2.3/s)."""
    settings = _settings(tmp_path, trace=_late_trace(tmp_path))
    baseline = Trial(settings.baseline(), 8.0, 5.0, 319.2, 0, 2.3, requests=320, window_s=40.0)
    baseline.first_window = {"throughput_rps": 1.0, "goodput_rps": 1.0}
    asked: list[float | None] = []
    bench = _bench(tmp_path, [None, None], settings)

    def window(index: int, window_s: float | None = None) -> Samples:
        asked.append(window_s)
        return _window(10, 10.0) if index == 1 else _window(320, 30.0)

    bench.window = window  # type: ignore[method-assign]
    measured = bench.run(MB4, [baseline])
    assert not measured.pruned and asked == [None, 30.0]
    assert measured.first_window == {"throughput_rps": 1.0, "goodput_rps": 1.0}


def test_every_trace_trial_s_second_window_is_the_trace_s_not_its_own_rate(tmp_path: Path) -> None:
    """Before, window 2 stretched by the trial's own window-1 rate: a trial serving 60/s got 10 s, one serving 1/s
    30 s, so their windows saw different parts of the trace (the burst at 15 s in one only)."""
    settings = _settings(tmp_path, trace=_late_trace(tmp_path))
    seconds = []
    for served in (10, 600):
        asked: list[float | None] = []
        bench = _bench(tmp_path, [None], settings)
        bench.window = lambda index, window_s=None, n=served, a=asked: a.append(window_s) or _window(n, 10.0)  # type: ignore[method-assign]
        bench.run(MB4)
        seconds.append(asked[1])
    assert seconds == [30.0, 30.0]


def test_a_pass_longer_than_the_window_is_said(tmp_path: Path) -> None:
    from quantserve.cli.tune_trace import pass_note

    note = pass_note(_settings(tmp_path, trace=_late_trace(tmp_path)))
    assert note.startswith("the trace's pass (20.0643 s) is longer than a window (10 s, --quick's cap)")
    assert "window 2 (30 s) the whole pass" in note
    from quantserve.cli.tune_result import TuneResult

    settings = _settings(tmp_path, trace=_late_trace(tmp_path))
    base = Trial(settings.baseline(), 8.0, 5.0, 319.2, 0, 2.3, requests=320, window_s=40.0)
    assert TuneResult([base], base, base, 1.0, settings).to_json()["settings"]["trace_pass_note"] == note
    assert pass_note(_settings(tmp_path)) == ""


# --- 3. a full disk keeps the trials measured ------------------------------------------------------------------


class FullDiskServer(TrialServer):
    """The search path with no tritonserver: trials 1-2 measured, trial 3's records hit a full disk."""

    def __init__(self, settings: TuneSettings, out: Path) -> None:
        self.settings, self.out, self.count = settings, out, 0

    def __enter__(self) -> FullDiskServer:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def install(self, config: Any) -> None:
        pass

    def down(self) -> str | None:
        return None

    def window(self, index: int, window_s: float | None = None) -> Samples:
        if self.count == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.out / "runs/trial03-w1/raw"))
        return _window(3000, 3.0)


def test_a_full_disk_saves_tune_json_with_the_trials_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tune_module, "TrialServer", FullDiskServer)
    monkeypatch.setattr(tune_module, "check_settings", lambda settings: None)
    settings = _settings(tmp_path, max_trials=3)
    with pytest.raises(TuneFailed) as failed:
        tune_module.tune(settings, say=lambda line: None)
    line = str(failed.value)
    assert line.startswith(f"tune: {settings.out}/runs/trial03-w1/raw: no space left on device during the search")
    assert "the 2 trial(s) measured are in" in line and line.endswith(
        f"nothing was deployed ({settings.repo} is as it was)"
    )
    document = json.loads((settings.out / "tune.json").read_text())
    assert len(document["trials"]) == 2 and document["deployed"] == {} and "no space left" in document["failure"]
    assert (settings.out / "tune.html").exists()


def test_no_room_for_the_page_still_keeps_tune_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quantserve.cli import tune_report

    def no_room(document: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tune_module, "TrialServer", FullDiskServer)
    monkeypatch.setattr(tune_module, "check_settings", lambda settings: None)
    monkeypatch.setattr(tune_report, "render_html", no_room)
    settings = _settings(tmp_path, max_trials=3)
    with pytest.raises(TuneFailed) as failed:
        tune_module.tune(settings, say=lambda line: None)
    assert "the 2 trial(s) measured are in" in str(failed.value) and "(no room left for tune.html)" in str(failed.value)
    assert len(json.loads((settings.out / "tune.json").read_text())["trials"]) == 2
    assert not (settings.out / "tune.html").exists()


# --- 4. a partial trial never met the SLO ----------------------------------------------------------------------


def test_a_partial_trial_is_not_counted_as_having_met_the_slo(tmp_path: Path) -> None:
    base = _settings(tmp_path).baseline()
    partial = Trial(base, 900.0, 5.0, 9.0, 0, 900.0, requests=2700, window_s=3.0, interrupted=True)
    assert not meets_slo(partial, SLO_MS) and met_slo([partial], SLO_MS) == []


def test_the_search_line_counts_failed_trials() -> None:
    """A trial failed by two server deaths was in no count of "7 trials (0 pruned) in N s" (quick-start probe)."""
    from quantserve.cli.tune_lines import search_counts

    assert search_counts({"pruned": 0, "failed": 1}) == "0 pruned, 1 failed"
    assert search_counts({"pruned": 2, "failed": 0}) == "2 pruned"
    assert search_counts({"pruned": 2}) == "2 pruned"  # a tune.json from before `failed` was counted
