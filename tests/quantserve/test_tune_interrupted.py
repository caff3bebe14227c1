"""`quantserve tune` stopped by SIGTERM, and a pick that loses its confirmation run: what is said and recorded.

Through `main`, with the trial server and the search faked (no tritonserver: the figures are given) and the winner's
deploy real. Before: a SIGTERM during the re-measure exited 130 with only "quantserve: interrupted" while the
repository held the new version, no tune.json; one mid-search lost the trials measured; a pick that lost to the
baseline was printed as "best" with the baseline's figures, its own confirmation nowhere."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_tune_limits import FakeBench  # TrialServer's place: the confirmation returns the pair given

from quantserve.cli import main
from quantserve.cli.tune import ServingConfig, Trial, make_config

MODELS_FILE = Path(__file__).resolve().parents[1] / "loadtest" / "loadtest_models.py"
BASELINE = make_config("", 0, "powers", 0, 1)
PICK = make_config("", 8, "powers", 500, 1)


def loadtest_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tune_interrupted_models", MODELS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def build(tmp_path: Path) -> Path:
    models = loadtest_models()
    models.labeled_data(64, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    return Path(models.make_build_dir(tmp_path / "build" / "mlp_fp32"))


def trial(config: ServingConfig, rps: float, p99: float) -> Trial:
    return Trial(config, rps, p99 / 2, p99, 0, rps, requests=int(rps * 6), window_s=6.0)


BASELINE_TRIAL = trial(BASELINE, 1.0, 1.0)


def sigterm() -> None:
    """SIGTERM to this process, as `kill PID` does; main turns it into the interrupt."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5.0)  # the handler raises before this ends
    raise AssertionError("SIGTERM did not interrupt")


def run_tune(
    tmp_path: Path,
    build: Path,
    monkeypatch: pytest.MonkeyPatch,
    search: Any,
    confirmed: tuple[Trial, Trial],
    remeasure: Any,
) -> int:
    from quantserve.cli import tune as tune_module
    from quantserve.cli import tune_winner

    monkeypatch.setattr(tune_module, "TrialServer", lambda *_: FakeBench(confirmed))
    monkeypatch.setattr(tune_module, "search", search)
    monkeypatch.setattr(tune_winner, "remeasure", remeasure)
    argv = ["tune", str(build), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "50", "--quick"]
    return main([*argv, "--repo", str(tmp_path / "repo"), "--name", "mlp_t", "--out", str(tmp_path / "out")])


def searched(*trials: Trial) -> Any:
    def search(settings: Any, bench: Any, say: Any, on_trial: Any, measured: list | None = None) -> tuple[list, str]:
        measured = [] if measured is None else measured  # tune's list: each trial joins it as it is measured
        measured.extend(trials)
        return measured, ""

    return search


def test_sigterm_during_the_remeasure_says_what_is_deployed_and_writes_tune_json(
    tmp_path: Path, build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    trials = (trial(BASELINE, 1169.0, 35.1), trial(PICK, 2000.0, 18.0))
    confirmed = (trial(BASELINE, 1200.0, 30.0), trial(PICK, 1900.0, 17.0))
    code = run_tune(tmp_path, build, monkeypatch, searched(*trials), confirmed, lambda *_: sigterm())
    err = capsys.readouterr().err
    assert code == 130
    assert (tmp_path / "repo" / "mlp_t" / "1").is_dir()  # the winner's deploy is in the user's repository
    report = tmp_path / "out" / "tune.json"
    line = (
        f"quantserve: tune: interrupted during the re-measure: mlp_t v1 (mb8 pref 1,2,4,8 q500us x1) is deployed in "
        f"{tmp_path / 'repo'} (a running serve loads it), not re-measured; the 2 trial(s) measured are in {report}; "
        "exit 130"
    )
    assert line in err.splitlines(), err
    assert "quantserve: interrupted" not in err
    document = json.loads(report.read_text())
    assert document["interrupted"] is True and document["interrupted_during"] == "the re-measure"
    assert document["deployed"]["version"] == 1 and document["remeasured"] == {}
    assert len(document["trials"]) == 2 and document["best"]["throughput_rps"] == 1900.0
    assert "Interrupted during the re-measure: the winner deployed" in (tmp_path / "out" / "tune.html").read_text()


def test_sigterm_mid_search_keeps_the_trials_measured_and_deploys_nothing(
    tmp_path: Path, build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def search(settings: Any, bench: Any, say: Any, on_trial: Any, measured: list | None = None) -> tuple[list, str]:
        measured = [] if measured is None else measured
        measured.extend([trial(BASELINE, 1169.0, 35.1), trial(PICK, 1500.0, 20.0)])
        sigterm()
        return measured, ""

    code = run_tune(tmp_path, build, monkeypatch, search, (BASELINE_TRIAL, BASELINE_TRIAL), lambda *_: {})
    err = capsys.readouterr().err
    assert code == 130
    report = tmp_path / "out" / "tune.json"
    line = (
        f"quantserve: tune: interrupted during the search: nothing was deployed ({tmp_path / 'repo'} is as it was); "
        f"the 2 trial(s) measured are in {report}; exit 130"
    )
    assert line in err.splitlines(), err
    assert not (tmp_path / "repo" / "mlp_t").exists()
    document = json.loads(report.read_text())
    assert document["interrupted_during"] == "the search" and document["deployed"] == {}
    assert [t["throughput_rps"] for t in document["trials"]] == [1169.0, 1500.0]
    assert document["best"]["throughput_rps"] == 1500.0 and not document["search"]["confirmed"]


def test_a_pick_that_loses_its_confirmation_is_printed_and_recorded_beside_the_baseline(
    tmp_path: Path, build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """tune2's run: the search's pick (2000 req/s in the search) measured 1850 back to back against the baseline's
    1919; before, "best 1919 req/s" twice and the 1850 nowhere."""
    trials = (trial(BASELINE, 1169.0, 35.1), trial(PICK, 2000.0, 18.0))
    confirmed = (trial(BASELINE, 1919.0, 11.9), trial(PICK, 1850.0, 14.0))
    checked = {"throughput_rps": 1900.0, "p99_ms": 12.0, "throughput_ratio": 0.99, "p50_ms": 5.0}
    code = run_tune(tmp_path, build, monkeypatch, searched(*trials), confirmed, lambda *_: checked)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (
        "tune: confirmed back to back: baseline 1919 req/s, p99 11.9 ms, goodput 1919/s; the search's pick "
        "(mb8 pref 1,2,4,8 q500us x1) 1850 req/s, p99 14.0 ms, goodput 1850/s"
    ) in captured.err.splitlines(), captured.err
    assert (
        "the search's pick, max batch 8, preferred 1,2,4,8, delay 500 µs, ×1, confirmed at 1850.0 good req/s, "
        "p99 14.00 ms: it did not beat the baseline measured back to back, so the baseline is kept and deployed"
    ) in captured.out.splitlines(), captured.out
    document = json.loads((tmp_path / "out" / "tune.json").read_text())
    confirmation = document["confirmation"]
    assert confirmation["kept"] == "baseline" and confirmation["pick"]["throughput_rps"] == 1850.0
    assert confirmation["baseline"]["throughput_rps"] == 1919.0 == document["best"]["throughput_rps"]
    assert document["search_best"]["throughput_rps"] == 2000.0
    assert document["deployed"]["config"]["max_batch"] == 0 and document["interrupted"] is False
    html = (tmp_path / "out" / "tune.html").read_text()
    assert "confirmed at 1850.0 good req/s, p99 14.00 ms: it did not beat" in html  # the terminal's line (tune_lines)


def test_a_search_interrupted_before_deploying_names_no_winning_precision() -> None:
    """Given FP32 and INT8 builds, a search cut before anything was deployed won nothing: tune.json said
    `winner_precision: int8` beside `interrupted: true` (session 52's probe)."""
    from quantserve.cli.tune_result import TuneResult

    best = trial(make_config("int8", 8, "powers", 500, 1), 1500.0, 20.0)
    baseline = trial(make_config("fp32", 0, "powers", 0, 1), 1169.0, 35.1)
    finished = TuneResult(trials=[baseline, best], best=best, baseline=baseline, seconds=1.0)
    assert finished.winner_precision == "int8"
    cut = TuneResult(trials=[baseline, best], best=best, baseline=baseline, seconds=1.0, interrupted="the search")
    assert cut.winner_precision == "" and cut.to_json()["winner_precision"] == ""
    deployed = TuneResult([baseline, best], best, baseline, 1.0, interrupted="the re-measure", deployed={"version": 1})
    assert deployed.winner_precision == "int8"
