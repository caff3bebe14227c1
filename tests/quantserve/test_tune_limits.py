"""Tune's lines where the SLO is missed, without a server: the closed loop's own bound (Little's law), what was and
was not confirmed or deployed, and the prune rule when no configuration's goodput counts most of its requests.

The figures are those of `tune b_mlp --data mlp.npz --slo-p99-ms 100 --users 256 --quick` on this machine: 7 trials
at 819-1396 req/s, p99 261-809 ms, goodputs 19-163/s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from quantserve.cli.tune import ServingConfig, Trial, TuneResult, TuneSettings, make_config

BASELINE = make_config("", 0, "powers", 0, 1)
MB16X2 = make_config("", 16, "max", 500, 2)
MB32 = make_config("", 32, "half", 2000, 1)


def settings(tmp_path: Path, **changes: Any) -> TuneSettings:
    fields: dict[str, Any] = dict(
        builds={"": tmp_path}, data=tmp_path / "mlp.npz", slo_p99_ms=100.0, repo=tmp_path / "repo", name="m"
    )
    return TuneSettings(**{**fields, "out": tmp_path / "out", "users": 256, "quick": True, **changes})


def trial(config: ServingConfig, rps: float, p99: float, goodput: float, **more: Any) -> Trial:
    return Trial(config, rps, p99 / 2, p99, 0, goodput, requests=int(rps * 6), window_s=6.0, **more)


# --- the prune rule --------------------------------------------------------------------------------------------


def test_a_trial_is_not_pruned_on_goodput_noise_when_no_goodput_counts_most_requests() -> None:
    """Trial 4 (max batch 16 x2) had the most throughput and the lowest p99 but 19 good req/s in its first window
    against the best's 103 (11% of its requests within the SLO): it was pruned. Below half, throughput decides."""
    from quantserve.cli.tune_prune import PRUNE_FRACTION, clearly_worse

    best_so_far = [trial(BASELINE, 880.0, 424.6, 89.7), trial(MB32, 918.0, 479.7, 103.3)]
    assert not clearly_worse(trial(MB16X2, 1396.0, 261.4, 18.5), best_so_far)
    assert clearly_worse(trial(MB16X2, PRUNE_FRACTION * 918.0 - 1, 900.0, 18.5), best_so_far)  # served clearly less
    # pruned and failed trials are no rivals: the lone failed one leaves nothing to compare with
    failed = trial(MB32, 5000.0, 1.0, 5000.0, error="tritonserver killed by SIGKILL during this trial (restarted)")
    assert not clearly_worse(trial(MB16X2, 10.0, 900.0, 0.0), [failed])
    assert not clearly_worse(trial(MB16X2, 10.0, 900.0, 0.0), [trial(MB32, 5000.0, 1.0, 5000.0, pruned=True)])


def test_goodput_still_prunes_where_the_best_serves_most_requests_within_the_slo() -> None:
    from quantserve.cli.tune_prune import PRUNE_FRACTION, clearly_worse

    best_so_far = [trial(BASELINE, 100.0, 90.0, 60.0)]  # 60% within the SLO: goodput counts
    assert clearly_worse(trial(MB16X2, 400.0, 300.0, PRUNE_FRACTION * 60.0 - 1), best_so_far)  # throughput no rescue
    assert not clearly_worse(trial(MB16X2, 50.0, 90.0, PRUNE_FRACTION * 60.0 + 1), best_so_far)


# --- the closed loop's own bound ------------------------------------------------------------------------------


def test_littles_law_names_a_closed_loop_whose_users_alone_miss_the_slo(tmp_path: Path) -> None:
    from quantserve.cli.tune_reach import load_bound

    trials = [trial(BASELINE, 880.0, 424.6, 89.7), trial(MB16X2, 1396.4, 261.4, 18.5, pruned=True, mean_ms=170.0)]
    line = load_bound(settings(tmp_path), trials)
    assert line == (  # 256 / 1396.4 req/s: 183 ms
        "by Little's law 256 closed-loop users at 1396 req/s (the most any trial served) take 183 ms a request on "
        "average, over the 100 ms SLO: fewer --users (or an open-loop --trace) or a looser SLO would be needed"
    )
    # a mean latency under half the cycle: the client's own time took the rest (a run at 834 req/s, p50 68 ms)
    client_bound = trial(MB16X2, 834.0, 351.0, 508.8, mean_ms=90.0)
    assert "take 307 ms a request on average (90 ms of it latency, the rest the load generator's own time: " in (
        load_bound(settings(tmp_path), [client_bound])
    )
    assert load_bound(settings(tmp_path, users=16), trials) == ""  # 16 / 880 req/s: 18 ms, within 100 ms
    assert load_bound(settings(tmp_path, slo_p99_ms=200.0), trials) == ""  # 183 ms is within 200
    assert load_bound(settings(tmp_path, trace=tmp_path / "arrivals.csv"), trials) == ""  # open loop: no such bound
    failed = trial(MB32, 0.0, float("nan"), 0.0, error="no request completed")
    assert "at 880 req/s" in load_bound(settings(tmp_path), [trials[0], failed])
    # a single request already takes over twice the SLO (`out_of_reach`): fewer users would not help
    assert (
        load_bound(
            settings(tmp_path),
            [trial(BASELINE, 880.0, 424.6, 0.0, fastest_ms=250.0, compute_ms=250.0, requests_per_execution=1.0)],
        )
        == ""
    )


# --- tune's flow, its server faked -------------------------------------------------------------------------------


class FakeBench:
    """TrialServer's place: the confirmation returns what the test gives (None: it must not run)."""

    def __init__(self, confirmed: tuple[Trial, Trial] | None) -> None:
        self.confirmed = confirmed

    def __enter__(self) -> FakeBench:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def confirm(self, baseline: ServingConfig, best: ServingConfig) -> tuple[Trial, Trial]:
        assert self.confirmed is not None, "a stopped search has nothing to confirm"
        return self.confirmed


def run_tune(
    monkeypatch: pytest.MonkeyPatch,
    tune_settings: TuneSettings,
    trials: list[Trial],
    stopped: str,
    confirmed: tuple[Trial, Trial] | None,
) -> tuple[TuneResult, list[str]]:
    from quantserve.cli import tune as tune_module
    from quantserve.cli import tune_winner

    def no_deploy(*_: object) -> dict:
        raise AssertionError("a configuration that misses the SLO is deployed only with --allow-slo-miss")

    monkeypatch.setattr(tune_winner, "deploy_winner", no_deploy)
    monkeypatch.setattr(tune_module, "check_settings", lambda _: None)
    monkeypatch.setattr(tune_module, "TrialServer", lambda *_: FakeBench(confirmed))
    monkeypatch.setattr(tune_module, "search", lambda *_: (trials, stopped))
    said: list[str] = []
    return tune_module.tune(tune_settings, said.append), said


def summary(result: TuneResult, capsys: pytest.CaptureFixture[str]) -> str:
    from quantserve.cli.commands.tune import print_summary

    capsys.readouterr()
    print_summary(result.to_json(), Path("out"))
    return capsys.readouterr().out


def test_a_missed_slo_under_a_closed_loop_says_littles_law_and_deploys_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "the baseline is deployed", then "nothing deployed (the SLO was missed)", and "a faster build, more
    cores or a looser SLO would be needed" where 256 users at ~1000 req/s wait >= 256 ms whatever the server does."""
    from quantserve.cli.tune import slo_missed

    trials = [trial(BASELINE, 879.7, 424.6, 89.7), trial(MB16X2, 1396.4, 261.4, 18.5), trial(MB32, 970.0, 527.5, 163.0)]
    confirmed = (trial(BASELINE, 865.0, 458.2, 111.4), trial(MB32, 860.0, 470.0, 100.0))
    result, said = run_tune(monkeypatch, settings(tmp_path), trials, "", confirmed)
    assert not any("deployed" in line for line in said), said
    kept = "the search's pick did not beat the baseline when both were measured again: the baseline is kept, though "
    kept += "it missed the 100 ms SLO"
    assert kept in said
    assert result.best.config == BASELINE and result.confirmed and not result.deployed
    missed = slo_missed(result)
    assert missed.startswith("no configuration met the 100 ms p99 SLO: the best (no batching x1) has p99 458.2 ms")
    assert "13% of its requests within it; by Little's law 256 closed-loop users at 1396 req/s " in missed, missed
    assert missed.endswith(
        "take 183 ms a request on average, over the 100 ms SLO: fewer --users (or an open-loop "
        "--trace) or a looser SLO would be needed"
    ), missed
    printed = summary(result, capsys)
    assert "(both confirmed back to back)" in printed
    assert "by Little's law 256 closed-loop users at 1396 req/s" in printed and "faster build" not in printed, printed
    document = json.loads((tmp_path / "out" / "tune.json").read_text())
    assert document["search"]["confirmed"] is True and "Little's law" in document["search"]["load_bound"]
    assert "Little&#x27;s law" in (tmp_path / "out" / "tune.html").read_text()


def test_a_search_stopped_early_claims_no_confirmation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: "gain over the naive baseline: –x goodput (both confirmed back to back)" after a search that stopped
    at its first trial, with no confirmation run."""
    only = trial(BASELINE, 1063.4, 41.4, 0.0, fastest_ms=3.0)
    stopped = "the fastest of 8868 requests took 3.00 ms, 3.0x the 1 ms SLO, …"
    result, said = run_tune(monkeypatch, settings(tmp_path, slo_p99_ms=0.01, users=16), [only], stopped, None)
    assert not any("confirm" in line for line in said), said
    printed = summary(result, capsys)
    assert "confirmed back to back" not in printed, printed
    assert not result.confirmed and result.stopped == stopped and not result.deployed
    gain = "gain over the naive baseline: none (no baseline goodput) (the search's figures: it stopped after 1 trial(s)"
    assert gain in printed, printed
    assert "Little's law" not in printed  # 16 users / 1063 req/s: 15 ms a request; the build itself is too slow
    html = (tmp_path / "out" / "tune.html").read_text()
    assert "confirmed after the search" not in html and "not confirmed" in html


def test_a_failed_confirmation_keeps_the_search_figures_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = [trial(BASELINE, 100.0, 200.0, 10.0), trial(MB32, 300.0, 150.0, 30.0)]
    broken = trial(MB32, 0.0, float("nan"), 0.0, error="no request completed in 3 s of measured load")
    result, said = run_tune(monkeypatch, settings(tmp_path, users=4), trials, "", (trials[0], broken))
    assert said == [f"the confirmation run failed ({broken.error}): the search's own figures stand"]
    assert not result.confirmed and result.best is trials[1] and result.baseline is trials[0]
    assert "(the search's figures: the confirmation run failed)" in summary(result, capsys)


def test_a_trial_records_its_mean_latency_for_the_closed_loop_bound() -> None:
    import numpy as np

    from quantserve.cli.tune_trials import Samples

    samples = Samples(np.array([10.0, 20.0, 60.0, 999.0]), np.array([True, True, True, False]), 1.0)
    assert samples.trial(BASELINE, 100.0).mean_ms == 30.0  # of the successes only
