"""A tune trial whose model stopped being served mid-trial is no measurement: named, never ranked or chosen.

Probe pl9 fault 7: the trial model unloaded through Triton's API on tune's own server, trial 3 was printed and ranked
as an ordinary trial ("906 req/s, p99 10.2 ms, goodput 906/s, 4 of 3960 requests failed"), its window 4.37 s
against about 8.1 s for the others, with no note; tune went on and deployed (rc 0). The load run ends within a
second of the unload (`loadtest.model_gone`); these tests give tune's windows such a run, the harness faked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from loadtest.recording_files import SAMPLE_COLUMNS
from quantserve.cli.tune import Trial, search
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import SCRATCH_MODEL, ServingConfig, best_trial, meets_slo
from tests.quantserve.test_tune_limits import BASELINE, MB16X2, settings, trial

NOT_READY = f"Request for unknown model: '{SCRATCH_MODEL}' has no available versions"
CUT = (
    f"cut short: model '{SCRATCH_MODEL}' stopped being served 5.0 s into its measured windows (after 2500 requests "
    "answered; unloaded from tune's own server by another client?): not a measurement, not ranked"
)


class Windows:
    """The harness's side of each window: Locust's run (`run_step`) and its records, one window a call; `gone_after`:
    seconds into Locust's window (warm-up included) the model went, None where it stayed served."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, gone_after: list[float | None]) -> None:
        from loadtest import harness, recording_files

        self.gone_after, self.runs = gone_after, 0
        monkeypatch.setattr(harness, "run_step", self.run_step)
        monkeypatch.setattr(recording_files, "read_window", lambda *_: self.window)
        monkeypatch.setattr(recording_files, "read_latencies", lambda _, start, end: self.rows(start, end))
        monkeypatch.setattr(recording_files, "read_unanswered", lambda *_: np.zeros((0, 2)))

    def run_step(self, settings: Any, *_: Any, **__: Any) -> Any:
        from loadtest.model_gone import ModelGone, cut_short
        from loadtest.percentiles import LatencySummary
        from loadtest.results import LoadResult

        gone = self.gone_after[self.runs]
        start = 100.0 * (self.runs + 1)  # each window's Locust run: 1 s warm-up (quick), then up to 3 s measured
        end = start + 4.0 if gone is None else start + gone + 0.4  # a cut run ends within a second
        self.window = SimpleNamespace(start=start, end=end)
        self.runs += 1
        latency = LatencySummary.from_samples(np.ones(1))
        result = LoadResult(SCRATCH_MODEL, settings.url, "closed", 4, end - start, 1, 0, 1.0, 1.0, latency)
        result.errors = {} if gone is None else {f"InferenceServerException({NOT_READY!r})": 4}
        if gone is None:
            return result
        return cut_short(result, ModelGone(SCRATCH_MODEL, "", gone, 1, NOT_READY), settings.duration_s)

    def rows(self, start: float, end: float) -> np.ndarray:
        """500 requests a second, 2 ms each, every one served while the model was; 4 refused after it went."""
        ends = np.arange(start, end, 0.002)
        gone = self.gone_after[self.runs - 1]
        cut_at = self.window.start + gone if gone is not None else np.inf
        served, refused = ends[ends < cut_at], ends[ends >= cut_at][:4]
        ends = np.concatenate([served, refused])
        ok = np.concatenate([np.ones(served.size), np.zeros(refused.size)])
        rows = np.zeros(
            (ends.size, SAMPLE_COLUMNS)
        )  # recording_files' columns: end, latency ms, ok, then lags and counts
        rows[:, 0], rows[:, 1], rows[:, 2] = ends, 2.0, ok
        return rows


def trial_server(tmp_path: Path) -> TrialServer:
    """A TrialServer with no tritonserver behind it: its windows come from `Windows`."""
    bench = object.__new__(TrialServer)
    bench.settings, bench.out, bench.count = settings(tmp_path, users=4), tmp_path / "out", 0
    bench.server = SimpleNamespace(grpc_url="127.0.0.1:1", pid=None, metrics_url=None)  # type: ignore[assignment]
    bench.install = lambda config: None  # type: ignore[method-assign]
    bench.down = lambda: None  # type: ignore[method-assign]
    return bench


def test_a_trial_whose_model_went_in_its_second_window_is_named_and_never_ranked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Window 1 whole (3 s), the model gone 2 s into window 2's measured part: 5.0 s into the trial's windows."""
    windows = Windows(monkeypatch, [None, 3.0])  # Locust's 3.0 s: the 1 s warm-up, then 2 s measured
    cut = trial_server(tmp_path).run(MB16X2)
    # ranked against a slower trial that was measured whole, the cut one is never chosen (before: 833 req/s won)
    slower = trial(BASELINE, 100.0, 20.0, 100.0)
    assert best_trial([cut, slower], traced=False) is slower
    failing = replace(slower, failed_requests=1)  # nor where every other one failed requests too
    assert best_trial([cut, failing], traced=False) is failing
    from quantserve.cli.tune import describe

    assert describe(cut) == CUT
    assert windows.runs == 2 and cut.cut_short and cut.error == CUT
    assert (cut.requests, cut.failed_requests, cut.throughput_rps, cut.goodput_rps) == (0, 0, 0.0, 0.0)
    assert not meets_slo(cut, 100.0)


def test_a_trial_whose_model_went_in_its_first_window_runs_no_second_and_is_not_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows = Windows(monkeypatch, [1.5])
    rival = trial(BASELINE, 10_000.0, 1.0, 10_000.0)  # the first window would read as clearly worse
    cut = trial_server(tmp_path).run(MB16X2, [rival])
    assert windows.runs == 1 and not cut.pruned
    assert cut.cut_short
    assert cut.error.startswith(f"cut short: model '{SCRATCH_MODEL}' stopped being served 0.5 s into its measured ")


class CutOnce:
    """TrialServer's place in the search: the second configuration's first trial is cut short, every other one
    served at 100 req/s, p99 5 ms."""

    def __init__(self) -> None:
        self.configs: list[ServingConfig] = []

    def run(self, config: ServingConfig, _: Any = ()) -> Trial:
        self.configs.append(config)
        if len(self.configs) == 2:
            return Trial(config, 0.0, float("nan"), float("nan"), 4, 0.0, requests=2004, error=CUT, cut_short=True)
        return trial(config, 100.0 + len(self.configs), 5.0, 100.0 + len(self.configs))


def test_the_search_says_a_cut_trial_and_never_picks_it(tmp_path: Path) -> None:
    said: list[str] = []
    bench = CutOnce()
    trials, stopped = search(settings(tmp_path, users=4, max_trials=3), bench, said.append, None)  # type: ignore[arg-type]
    assert not stopped and len(trials) == 4
    cut = bench.configs[1]
    assert said[1] == f"trial 2/4: {cut.label()}: {CUT}"
    assert all("cut short" not in line for i, line in enumerate(said) if i != 1)
    assert best_trial(trials, traced=False) is not trials[1]


def test_a_re_measure_its_model_went_away_from_says_so_not_its_figures() -> None:
    from loadtest.model_gone import ModelGone
    from quantserve.cli.commands.tune import remeasure_line

    line = ModelGone("m", "", 4.2, 1530, NOT_READY).line()
    check = {"cut_short": line, "throughput_rps": 364.0, "p99_ms": 3.0, "throughput_ratio": 0.4, "failed_requests": 4}
    document = {"remeasured": check, "best": {"p99_ms": 3.0}, "settings": {"slo_p99_ms": 10.0}}
    assert remeasure_line(document) == f"re-measure cut short: {line}"
