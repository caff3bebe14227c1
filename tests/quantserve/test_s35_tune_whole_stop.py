"""`quantserve tune` stopped after a trial's last window reached its planned end (session 35, after 753f332).

The load test saves a step whole when the stop came as Locust shut down (`Window.ran_to_plan`); tune still cut the
trial in progress: its second window, run to plan, was marked partial, the trial never ranked nor given its SLO
verdict, though nothing of it was cut. Now such a trial is kept whole, ranked, and the interrupt's line names it; a
stop before the trial's last window (or inside one) still cuts it. No server: the harness's run, or the trial
server's windows, are given (the session-31 stand-in server).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from quantserve.cli import tune as tune_module
from quantserve.cli.tune_interrupted import TrialInterrupted, TuneInterrupted
from quantserve.cli.tune_server import WindowInterrupted
from quantserve.cli.tune_trials import SCRATCH_MODEL, Samples
from tests.quantserve.test_s29_tune_windows import Runs
from tests.quantserve.test_s31_tune_window_cut import CutServer, _server, _window
from tests.quantserve.test_tune_limits import settings


class StoppedRuns(Runs):
    """Locust's run ends in a stop: after its window reached its planned end (`whole`), or inside it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, whole: bool) -> None:
        super().__init__(monkeypatch)
        self.whole = whole

    def run_step(self, load: Any, *_: Any, **__: Any) -> Any:
        from loadtest.interruption import StepInterrupted

        result = super().run_step(load)
        if not self.whole:
            result.interrupted = True
        raise StepInterrupted(time.time(), result, whole=self.whole)


@pytest.mark.parametrize("whole", [True, False])
def test_a_window_stopped_after_its_planned_end_is_said_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole: bool
) -> None:
    from quantserve.cli.tune_server import measure_window

    StoppedRuns(monkeypatch, whole)
    with pytest.raises(WindowInterrupted) as stop:
        measure_window(settings(tmp_path, users=4), "127.0.0.1:1", SCRATCH_MODEL, tmp_path / "w", None, 3.0)
    assert stop.value.samples is not None and stop.value.samples.ok.size > 0
    assert stop.value.whole is whole  # before: never said, every stop read as a cut


def test_a_stop_after_the_second_window_ran_to_plan_keeps_the_trial_whole(tmp_path: Path) -> None:
    server = _server(tmp_path, WindowInterrupted(_window(3000, 3.06), whole=True))
    config = server.settings.baseline()
    with pytest.raises(TrialInterrupted) as stop:
        server._measure(config, [])
    trial = stop.value.trial
    assert stop.value.whole and trial is not None and trial.config == config
    assert not trial.interrupted and not trial.pruned and not trial.error  # before: interrupted=True, never ranked
    assert trial.requests == 6000 and trial.first_window  # both windows, as a finished trial holds them


def test_a_stop_after_the_first_window_still_cuts_the_trial_before_its_second(tmp_path: Path) -> None:
    server = _server(tmp_path, AssertionError("the second window was started after the stop"))
    measure_first = server.window
    server.window = lambda index, window_s=None: (  # type: ignore[method-assign]
        _raise(WindowInterrupted(measure_first(index), whole=True)) if index == 1 else measure_first(index)
    )
    with pytest.raises(TrialInterrupted) as stop:
        server._measure(server.settings.baseline(), [])
    trial = stop.value.trial
    assert not stop.value.whole and trial is not None and trial.interrupted and trial.requests == 3000


def _raise(exc: BaseException) -> Samples:
    raise exc


class WholeStop(CutServer):
    """The stand-in search: the baseline serves 3000 requests a window at 10 ms, the second trial 4000 at 5 ms, and
    the stop comes after the second trial's window 2 ran to its planned end."""

    def window(self, index: int, window_s: float | None = None) -> Samples:
        if self.count == 1:
            return _window(3000, 3.06, latency_ms=10.0)
        if index == 2:
            raise WindowInterrupted(_window(4000, 3.06, latency_ms=5.0), whole=True)
        return _window(4000, 3.06, latency_ms=5.0)


def test_tune_ranks_the_trial_the_stop_came_after_and_says_it_was_kept_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.quantserve.test_s31_tune_window_cut import _settings

    monkeypatch.setattr(tune_module, "TrialServer", WholeStop)
    monkeypatch.setattr(tune_module, "check_settings", lambda settings: None)
    tune_settings = _settings(tmp_path)
    with pytest.raises(TuneInterrupted) as stop:  # the stop is still a stop: exit 130 at the command
        tune_module.tune(tune_settings, say=lambda line: None)
    document = json.loads((tune_settings.out / "tune.json").read_text())
    assert document["interrupted_during"] == "the search"
    trials = document["trials"]
    assert [t["interrupted"] for t in trials] == [False, False] and trials[1]["requests"] == 8000
    label = stop.value.result.trials[1].config.label()
    assert document["best"] == trials[1]  # ranked: the most goodput (before: the baseline, the whole trial partial)
    assert label in [t["config"] for t in document["slo_met_in_search"]]  # its SLO verdict, as a finished trial's
    assert f"trial 2 ({label}) had ended before the stop: kept whole and ranked" in stop.value.line
    assert "the 2 trial(s) measured are in" in stop.value.line
    assert "(interrupted: partial)" not in (tune_settings.out / "tune.html").read_text()


def test_a_confirmation_run_that_had_ended_is_kept_unmarked_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.quantserve.test_s32_tune_confirmation_cut import ConfirmationCut, _tune_cut

    def window(self: ConfirmationCut, index: int, window_s: float | None = None) -> Samples:
        samples = _window(4000 if self.count in (2, 4) else 3000, 3.06)
        if (self.count, index) == self.cut_at:  # the pick's confirmation, stopped after its window 2 ran to plan
            raise WindowInterrupted(samples, whole=True)
        return samples

    monkeypatch.setattr(ConfirmationCut, "window", window)
    document, line = _tune_cut(tmp_path, monkeypatch, (4, 2))
    pick = document["confirmation"]["pick"]
    assert not pick["interrupted"] and pick["requests"] == 8000  # before: marked partial, its whole window 2 cut
    label = "mb16 pref 2,4,8,16 q500us x1"  # the search's pick, the deploy defaults (`tune.starting_points`)
    assert pick["config"]["max_batch"] == 16 and pick["config"]["max_queue_delay_us"] == 500
    # session 36: both its runs had ended whole, so the confirmation is settled (tests/quantserve/test_s36_tune_stop.py)
    assert f"confirmed back to back: best {label} (" in line and "nothing was deployed" in line
    assert document["best"] == pick and document["search"]["confirmed"]
