"""`quantserve tune`: the Pareto front and search space as pure functions, bad input refused before any
server starts, and one quick joint FP32 x INT8 search end to end on a real tritonserver with Locust."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import re
import signal
import threading
from pathlib import Path
from types import ModuleType

import numpy as np
import psutil
import pytest

from loadtest.load_run import LoadRun
from quantserve.cli import main
from quantserve.cli.tune import PRUNE_FRACTION, ServingConfig, TuneSettings, make_config, suggest_config
from quantserve.cli.tune_checks import check_settings
from quantserve.cli.tune_prune import clearly_worse
from quantserve.cli.tune_report import pareto_front
from quantserve.cli.tune_server import TrialServer
from quantserve.cli.tune_trials import (
    MIN_REQUESTS,
    Samples,
    Trial,
    best_trial,
    second_window_s,
    trial_figures,
)
from quantserve.errors import QuantserveError

MODELS_FILE = Path(__file__).resolve().parents[1] / "loadtest" / "loadtest_models.py"
TRIAL_KEYS = {"config", "throughput_rps", "p50_ms", "p99_ms", "failed_requests", "goodput_rps", "pruned"}
CONFIG_KEYS = {"max_batch", "preferred", "max_queue_delay_us", "instances", "precision"}


def loadtest_models() -> ModuleType:
    """The load-test suite's tiny MLP builders, loaded by path (they live beside those tests)."""
    spec = importlib.util.spec_from_file_location("tune_loadtest_models", MODELS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- pure functions ---------------------------------------------------------------------------------


def test_pareto_front_keeps_points_no_other_beats_on_both_axes() -> None:
    points = [(100.0, 10.0), (200.0, 20.0), (150.0, 25.0), (200.0, 15.0), (50.0, 5.0), (math.nan, 1.0)]
    # (200, 20) loses to (200, 15); (150, 25) loses to (200, 15); NaN is never on the front.
    assert pareto_front(points) == [0, 3, 4]


def test_pareto_front_of_equal_points_keeps_both() -> None:
    assert pareto_front([(10.0, 1.0), (10.0, 1.0)]) == [0, 1]
    assert pareto_front([]) == []


def test_report_marks_the_front_the_pruned_and_the_slo(tmp_path: Path) -> None:
    from quantserve.cli.tune import TuneResult
    from quantserve.cli.tune_report import write_report
    from quantserve.cli.tune_trials import Trial

    def trial(mb: int, rps: float, p99: float, pruned: bool = False) -> Trial:
        return Trial(make_config("", mb, "powers", 500, 1), rps, p99 / 2, p99, 0, rps * 0.9, pruned)

    trials = [trial(0, 100.0, 30.0), trial(8, 300.0, 20.0), trial(16, 250.0, 40.0, pruned=True)]
    settings = settings_for(tmp_path, {"": tmp_path}, slo_p99_ms=25.0)
    json_path, html_path = write_report(TuneResult(trials, trials[1], trials[0], 12.0, settings), tmp_path)
    document = json.loads(json_path.read_text())
    assert [t["pruned"] for t in document["trials"]] == [False, False, True]
    assert document["gain"] == 3.0 and document["settings"]["slo_p99_ms"] == 25.0
    html = html_path.read_text()
    assert html.count("<tr class=") == 3 and html.count("<circle") == 3
    assert html.count('fill="none" stroke') == 1  # the pruned trial is hollow
    assert "SLO 25 ms" in html and 'class="front"' not in html  # one point alone is the whole front
    assert "<tr class='best'><td>2</td>" in html and "<tr class='baseline'><td>1</td>" in html


def test_goodput_counts_only_successes_within_the_slo() -> None:
    samples = Samples(np.array([1.0, 2.0, 9.0, 11.0, 3.0]), np.array([True, True, True, True, False]), 2.0)
    trial = trial_figures(ServingConfig(8, (8,), 100, 1), samples, slo_ms=10.0)
    assert trial.throughput_rps == 2.0  # 4 successes in 2 s
    assert trial.goodput_rps == 1.5  # 3 of them within 10 ms
    assert trial.failed_requests == 1 and trial.requests == 5
    assert trial.p50_ms == 5.5  # of the successes only
    assert trial.send_lag_p99_ms is None  # a closed loop has no arrival times to be late for
    lagged = Samples(samples.latencies_ms, samples.ok, 2.0, np.array([0.0, 0.0, 0.0, 0.0, 50.0]))
    assert (lagged + lagged).trial(trial.config, 10.0).send_lag_p99_ms == 50.0  # 2 of 10 requests at 50 ms


def test_a_trace_ties_goodputs_within_one_percent_and_the_lower_p99_wins() -> None:
    """Closed loop: the most goodput wins. A trace offers every trial the same load, so near-equal goodputs
    (every request within the SLO, give or take one) are a tie, won by the lower p99."""
    config = ServingConfig(16, (8, 16), 500, 1)
    fast = Trial(config, 100.0, 3.0, 9.0, 0, 99.5)
    full = Trial(dataclasses.replace(config, instances=2), 100.0, 5.0, 40.0, 0, 100.0)
    pruned = Trial(dataclasses.replace(config, instances=3), 100.0, 1.0, 2.0, 0, 100.0, pruned=True)
    assert best_trial([full, fast, pruned], traced=False) is full
    assert best_trial([full, fast, pruned], traced=True) is fast
    short = Trial(dataclasses.replace(config, max_batch=4), 97.0, 1.0, 2.0, 0, 97.0)  # 3 % fewer within the SLO
    assert best_trial([full, short], traced=True) is full


def test_a_configuration_that_fails_requests_does_not_win_and_nothing_in_the_slo_picks_the_lowest_p99() -> None:
    """A model that cannot take a batch fails 3 of 4 requests under batching: its successes' goodput beat the
    baseline's and it won, failures unseen. Where no trial serves within the SLO, the nearest tail is the best."""
    base = ServingConfig(0, (), 0, 1)
    clean = Trial(base, 24.0, 4.0, 9.0, 0, 20.0, requests=100)
    failing = Trial(ServingConfig(16, (16,), 500, 1), 30.0, 2.0, 6.0, 238, 30.0, requests=319)
    assert best_trial([clean, failing], traced=False) is clean
    assert best_trial([failing], traced=False) is failing  # nothing better measured: it stands, its failures shown
    slow = Trial(base, 24.0, 40.0, 90.0, 0, 0.0)
    nearer = Trial(ServingConfig(8, (8,), 500, 1), 40.0, 20.0, 60.0, 0, 0.0)
    assert best_trial([slow, nearer], traced=False) is nearer


def test_pruning_rule_needs_a_best_and_a_clear_gap() -> None:
    def trial(goodput: float) -> Trial:  # every request within the SLO: goodput is the measure
        return Trial(ServingConfig(0, (), 0, 1), goodput, 1.0, 2.0, 0, goodput)

    assert not clearly_worse(trial(10.0), [])
    assert not clearly_worse(trial(PRUNE_FRACTION * 100 + 1), [trial(100.0)])
    assert clearly_worse(trial(PRUNE_FRACTION * 100 - 1), [trial(100.0)])


def test_second_window_stretches_until_the_trial_holds_enough_requests() -> None:
    def first(requests: int, seconds: float) -> Samples:
        return Samples(np.ones(requests), np.ones(requests, dtype=bool), seconds)

    assert second_window_s(first(MIN_REQUESTS, 3.0), 3.0) == 3.0
    assert second_window_s(first(MIN_REQUESTS // 4, 3.0), 3.0) == 9.0  # 750 more at 83/s, capped at 3 windows
    assert second_window_s(first(MIN_REQUESTS // 2 + 100, 3.0), 3.0) == 3.0  # 400 more at 200/s fit in one window
    assert second_window_s(first(0, 3.0), 3.0) == 3.0


def test_configs_are_normalized_so_equal_deployments_compare_equal() -> None:
    assert make_config("", 0, "max", 2000, 2) == make_config("", 0, "powers", 0, 2) == ServingConfig(0, (), 0, 2)
    assert make_config("int8", 16, "powers", 500, 1).preferred == (2, 4, 8, 16)
    assert make_config("", 8, "half", 0, 1).preferred == (4, 8)
    assert make_config("", 2, "max", 0, 1).preferred == (2,)


def test_batch_choices_count_requests_so_multi_row_requests_always_fit() -> None:
    """16 rows per request (the demo's): a max batch of 2 requests is 32 rows, sizes in whole requests."""
    config = make_config("int8", 2, "powers", 500, 1, request_rows=16)
    assert config.max_batch == 32 and config.preferred == (16, 32)
    assert make_config("", 8, "half", 0, 1, request_rows=16).preferred == (64, 128)
    assert make_config("", 0, "max", 0, 1, request_rows=16).max_batch == 0  # no batching stays no batching


def test_optuna_suggestions_span_precision_and_stay_deployable(tmp_path: Path) -> None:
    import optuna

    settings = settings_for(tmp_path, {"int8": tmp_path / "a", "fp32": tmp_path / "b"})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    configs = [suggest_config(study.ask(), settings) for _ in range(12)]
    assert {c.precision for c in configs} == {"int8", "fp32"}
    for config in configs:
        assert config.instances >= 1
        assert (config.max_batch == 0) == (config.preferred == ())
        assert all(1 <= size <= config.max_batch for size in config.preferred)


@pytest.mark.parametrize(("users", "largest"), [(1, 0), (3, 4), (4, 4), (16, 16), (17, 32), (500, 32)])
def test_a_closed_loop_searches_no_max_batch_its_users_cannot_fill(tmp_path: Path, users: int, largest: int) -> None:
    """16 users never queue 32 requests: max batch 32 would batch as 16 does, a trial spent for nothing. The
    starting points stay within the choices; a trace's bursts keep every choice."""
    from quantserve.cli.tune import MAX_BATCH_CHOICES, max_batch_choices, starting_points

    settings = settings_for(tmp_path, {"": tmp_path / "a"}, users=users)
    assert max_batch_choices(settings)[-1] == largest
    assert all(point["max_batch"] in max_batch_choices(settings) for point in starting_points(settings))
    trace = tmp_path / "t.csv"
    trace.write_text("time\n0\n0.1\n")
    assert max_batch_choices(settings_for(tmp_path, {"": tmp_path / "a"}, users=2, trace=trace)) == MAX_BATCH_CHOICES


def test_a_trace_of_mixed_sizes_batches_whole_requests_of_its_largest(tmp_path: Path) -> None:
    """Every configuration takes the trace's largest request: its max batch counts requests of that size."""
    trace = tmp_path / "sized.csv"
    trace.write_text("time,batch_size\n0,1\n0.1,48\n0.2,4\n")
    fields: dict = dict(builds={}, data=tmp_path / "d.npz", slo_p99_ms=50.0, repo=tmp_path, name="m", out=tmp_path)
    sized = TuneSettings(**fields, trace=trace, request_batch=2)
    assert sized.request_rows == 48 and TuneSettings(**fields, request_batch=2).request_rows == 2
    config = make_config("", 4, "powers", 500, 1, sized.request_rows)
    assert config.max_batch == 4 * 48 and config.max_batch >= max(48, *config.preferred)


# --- bad input: one line, before any server starts ----------------------------------------------------


def settings_for(tmp_path: Path, builds: dict[str, Path], **changes: object) -> TuneSettings:
    fields: dict = dict(
        builds=builds, data=tmp_path / "load.npz", slo_p99_ms=50.0, repo=tmp_path / "repo", name="m", out=tmp_path
    )
    return TuneSettings(**{**fields, **changes})


@pytest.fixture
def fp32_build(tmp_path: Path) -> Path:
    models = loadtest_models()
    models.labeled_data(64, models.mlp_weights(), seed=3).save(tmp_path / "load.npz")
    return Path(models.make_build_dir(tmp_path / "build" / "mlp_fp32"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"slo_p99_ms": 0.0}, "--slo-p99-ms must be a positive number of ms, got 0"),
        ({"slo_p99_ms": -5.0}, "--slo-p99-ms must be a positive number of ms, got -5"),
        ({"slo_p99_ms": math.inf}, "--slo-p99-ms must be a positive number of ms, got inf"),
        ({"max_trials": 0}, "--max-trials must be at least 1, got 0"),
        ({"trace": Path("/nonexistent/arrivals.csv")}, "--trace /nonexistent/arrivals.csv: no such file"),
    ],
)
def test_bad_numbers_are_refused(tmp_path: Path, fp32_build: Path, changes: dict, message: str) -> None:
    with pytest.raises(QuantserveError, match=f"^{message}$"):
        check_settings(settings_for(tmp_path, {"": fp32_build}, **changes))


def test_unknown_build_folder_is_named(tmp_path: Path, fp32_build: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "build" / "nope"
    argv = ["tune", str(missing), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "50"]
    assert main([*argv, "--name", "m", "--repo", str(tmp_path / "repo"), "--out", str(tmp_path / "out")]) == 2
    assert f"{missing}: build folder not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any server or folder


def test_a_name_holding_a_model_of_another_interface_is_refused_before_the_search(
    tmp_path: Path, fp32_build: Path
) -> None:
    """The winner's deploy would be refused after the whole search (49 s at --max-trials 1, nothing of it written):
    a build whose inputs differ from the model already under --name is named up front."""
    from serving.deploy import deploy
    from serving.model_config import parse_config, write_config

    deploy(fp32_build, tmp_path / "repo", "m")
    check_settings(settings_for(tmp_path, {"": fp32_build}))  # the same interface: searched
    config = parse_config(tmp_path / "repo" / "m" / "config.pbtxt")
    config["input"][0]["dims"] = [2 * int(config["input"][0]["dims"][-1])]
    write_config(config, tmp_path / "repo" / "m")
    with pytest.raises(QuantserveError) as caught:
        check_settings(settings_for(tmp_path, {"": fp32_build}))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'repo' / 'm'}: {fp32_build} changes the model's interface: input 'x' dims")
    assert message.endswith("Tune it under another --name (nothing was searched)")


def test_data_that_does_not_fit_the_manifest_is_named(tmp_path: Path, fp32_build: Path) -> None:
    np.savez(tmp_path / "wrong.npz", x=np.zeros((4, 7), np.float32))
    settings = settings_for(tmp_path, {"": fp32_build}, data=tmp_path / "wrong.npz")
    with pytest.raises(QuantserveError, match=r"wrong.npz: input 'x' has shape \(4, 7\), the model expects"):
        check_settings(settings)
    np.savez(tmp_path / "other.npz", image=np.zeros((4, 32), np.float32))
    with pytest.raises(QuantserveError, match=r"arrays \['image'\] do not match the model inputs \['x'\]"):
        check_settings(settings_for(tmp_path, {"": fp32_build}, data=tmp_path / "other.npz"))


def test_a_gpu_build_is_refused_where_there_is_no_gpu(tmp_path: Path, fp32_build: Path) -> None:
    from quantserve.artifact import Manifest
    from serving.machine import gpus

    if not isinstance(gpus(), str):
        pytest.skip("this machine has an NVIDIA GPU")
    manifest = Manifest.load(fp32_build)
    manifest.target, manifest.extra = "onnxruntime", {"onnxruntime": {"device": "gpu"}}
    manifest.save(fp32_build)
    with pytest.raises(
        QuantserveError, match=r"mlp_fp32: its target serves on KIND_GPU instances, but this machine has no"
    ):
        check_settings(settings_for(tmp_path, {"": fp32_build}))


def test_a_build_missing_its_model_file_is_refused_before_any_server(
    tmp_path: Path, fp32_build: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, 7 trials each failed to deploy in 1 s and tune said the SLO was missed (--allow-slo-miss)."""
    (fp32_build / "model.onnx").unlink()
    argv = ["tune", str(fp32_build), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "50"]
    assert main([*argv, "--name", "m", "--repo", str(tmp_path / "repo"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error == f"quantserve: error: {fp32_build}: files the deploy needs are missing: {fp32_build / 'model.onnx'}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "repo").exists()


def with_reference(build: Path, reference: Path, precision: str) -> Path:
    """`build` as optimize leaves it: its FP32 reference copied in as fp32.onnx, named in files.reference."""
    from quantserve.artifact import Manifest

    (build / "fp32.onnx").write_bytes(reference.read_bytes())
    manifest = Manifest.load(build)
    manifest.files, manifest.precision = {"model": "model.onnx", "reference": "fp32.onnx"}, precision
    manifest.save(build)
    return build


def test_two_builds_of_different_models_are_refused(tmp_path: Path, fp32_build: Path) -> None:
    """Before, tune searched between two unrelated models as "FP32 and INT8" and deployed either under one name."""
    models = loadtest_models()
    other = models.make_build_dir(tmp_path / "build" / "other_int8", weights=models.mlp_weights(seed=5))
    other_fp32 = models.make_build_dir(tmp_path / "build" / "other_fp32", weights=models.mlp_weights(seed=5))
    other = with_reference(other, other_fp32 / "model.onnx", "int8")
    message = f"{other} and {fp32_build} are builds of different models: neither's model file nor reference"
    with pytest.raises(QuantserveError, match=f"^{re.escape(message)}"):
        check_settings(settings_for(tmp_path, {"int8": other, "fp32": fp32_build}))
    # the same model's INT8 build (a different model file, its reference the FP32 build's model) is accepted
    int8 = models.make_build_dir(tmp_path / "build" / "mlp_int8", weights=models.mlp_weights(seed=6))
    check_settings(
        settings_for(tmp_path, {"int8": with_reference(int8, fp32_build / "model.onnx", "int8"), "fp32": fp32_build})
    )


def test_the_remeasure_line_holds_its_p99_against_the_slo() -> None:
    """Before, a trace run printed only `re-measured: 298.7 req/s (1.00x the claim)` while its p99 was 46.9 ms
    against a claimed 13.0 and an SLO of 20."""
    from quantserve.cli.commands.tune import remeasure_line

    document = {
        "remeasured": {"throughput_rps": 298.7, "throughput_ratio": 1.0, "p99_ms": 46.9},
        "best": {"p99_ms": 13.0},
        "settings": {"slo_p99_ms": 20.0, "load": "open"},
    }
    assert remeasure_line(document) == (
        "re-measured: 298.7 req/s (set by the trace) (1.00x the claim), p99 46.9 ms (claimed 13.0): ABOVE the 20 ms SLO"
    )
    document["remeasured"]["p99_ms"], document["settings"]["load"] = 12.0, "closed"
    assert remeasure_line(document).endswith("p99 12.0 ms (claimed 13.0): within the 20 ms SLO")


def test_a_traces_remeasure_is_checked_by_the_arrivals_of_its_span_not_a_ratio_of_other_spans() -> None:
    """A trace front-loaded (1091 arrivals in its first 10 s, the rest 10 min later): the claim pooled windows 1 and
    2 (the dense start counted twice), the re-measure its first 31 s, read "0.66x the claim" with every arrival
    answered (session 40)."""
    from quantserve.cli.commands.tune import remeasure_line

    check = {"throughput_rps": 35.2, "throughput_ratio": 0.655, "p99_ms": 9.0, "requests": 1091, "failed_requests": 0}
    document = {
        "remeasured": {**check, "offered_requests": 1091, "planned_window_s": 31.0},
        "best": {"p99_ms": 8.0},
        "settings": {"slo_p99_ms": 500.0, "load": "open"},
    }
    assert remeasure_line(document) == (
        "re-measured: 35.2 req/s (set by the trace: 1091 of the 1091 arrivals of its 31 s answered), p99 9.0 ms "
        "(claimed 8.0): within the 500 ms SLO"
    )


def _measured(precision: str, fastest_ms: float, p99_ms: float = 50.0, error: str = "") -> Trial:
    """A trial whose Triton compute time per request (none batched) is its fastest request's: the out-of-reach bound."""
    config = make_config(precision, 0, "powers", 0, 1)
    compute = {"compute_ms": fastest_ms, "requests_per_execution": 1.0} if not error else {}
    return Trial(config, 100.0, 10.0, p99_ms, 0, 0.0, requests=400, error=error, fastest_ms=fastest_ms, **compute)


def test_an_slo_below_half_the_compute_time_of_every_build_is_out_of_reach(tmp_path: Path) -> None:
    """`tune --slo-p99-ms 0.001` measured every trial before saying nothing met it: the search stops as soon as each
    build has been measured and the SLO is below half the least compute time per request Triton measured."""
    from quantserve.cli.tune_reach import out_of_reach

    one = settings_for(tmp_path, {"": tmp_path}, slo_p99_ms=1.0)
    assert out_of_reach(one, [_measured("", fastest_ms=1.9)]) == ""  # 1 ms >= half of 1.9: a config might
    line = out_of_reach(one, [_measured("", fastest_ms=2.5)])
    assert line.startswith(
        "its model computes a 1-row request (--request-batch) in 2.50 ms in Triton, 2.5x the 1 ms SLO"
    ), line
    assert out_of_reach(one, [_measured("", fastest_ms=math.nan, error="tritonserver killed")]) == ""
    both = settings_for(tmp_path, {"int8": tmp_path, "fp32": tmp_path}, slo_p99_ms=1.0)
    assert out_of_reach(both, [_measured("fp32", fastest_ms=9.0)]) == ""  # the INT8 build may be faster
    assert out_of_reach(both, [_measured("fp32", 9.0), _measured("int8", 1.5)]) == ""
    assert out_of_reach(both, [_measured("fp32", 9.0), _measured("int8", 4.0)]).endswith(
        "the fastest of 800 requests took 4.00 ms"
    )


def test_the_slo_line_says_why_a_stopped_search_stopped(tmp_path: Path) -> None:
    from quantserve.cli.tune import TuneResult, slo_missed

    settings = settings_for(tmp_path, {"": tmp_path}, slo_p99_ms=1.0)
    trial = _measured("", fastest_ms=3.0, p99_ms=9.0)
    missed = TuneResult([trial], trial, trial, 1.0, settings)
    assert slo_missed(missed) == (
        "no configuration met the 1 ms p99 SLO: the best (no batching x1) has p99 9.0 ms, 0% of its requests within it"
    )
    missed.stopped = "the fastest of 400 requests took 3.00 ms, …"
    assert slo_missed(missed) == (
        "no configuration can meet the 1 ms p99 SLO: the fastest of 400 requests took 3.00 ms, … "
        "(stopped after 1 trial(s)); kept: no batching x1, the lowest p99 measured (p99 9.0 ms)"
    )
    assert missed.to_json()["search"]["stopped"] == missed.stopped


# --- end to end -------------------------------------------------------------------------------------------


def int8_build(fp32: Path, data: Path, out: Path) -> Path:
    """The project's real INT8 calibration of the MLP, labelled int8 in its manifest."""
    from optimizer.calibrate import calibrate_int8
    from quantserve.artifact import Artifact, Manifest
    from quantserve.data import load_npz

    artifact = Artifact(fp32 / "model.onnx", Manifest.load(fp32))
    quantized = calibrate_int8(artifact, load_npz(data), out / "int8.onnx")
    build = Path(loadtest_models().make_build_dir(out / "mlp_int8", model_path=quantized.path))
    return with_reference(build, fp32 / "model.onnx", "int8")  # tune checks both builds are one model


def short_windows(monkeypatch: pytest.MonkeyPatch, window_s: float | None = 1.0) -> None:
    """Tests of tune's flow, not of its statistics: no stretching to MIN_REQUESTS, and (unless `window_s` is None)
    1 s closed-loop windows without warm-up. Each trial is two Locust runs; this cuts a quick search to about half."""
    from quantserve.cli import tune_trials

    monkeypatch.setattr(tune_trials, "MIN_REQUESTS", 1)
    if window_s is not None:
        monkeypatch.setattr(tune_trials, "QUICK_WARMUP_S", 0.0)
        monkeypatch.setattr(tune_trials, "QUICK_WINDOW_S", window_s)


@pytest.mark.e2e
@pytest.mark.slow  # not serial: tune's flow on 1 s windows; no assertion rests on which configuration measured faster
def test_quick_joint_search_deploys_its_best_and_reports_it(
    tmp_path: Path, fp32_build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "cache"))
    short_windows(monkeypatch)
    int8 = int8_build(fp32_build, tmp_path / "load.npz", tmp_path / "build")
    out, repo = tmp_path / "out", tmp_path / "repo"
    argv = ["tune", str(int8), str(fp32_build), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "200"]
    argv += ["--quick", "--max-trials", "1", "--users", "8", "--repo", str(repo), "--name", "mlp", "--out", str(out)]
    assert main([*argv, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    document = json.loads((out / "tune.json").read_text())
    assert printed == document

    trials = document["trials"]
    assert len(trials) == 2 and document["search"]["trials"] == 2
    for entry in [*trials, document["best"], document["baseline"], document["search_best"]]:
        assert set(entry) >= TRIAL_KEYS and set(entry["config"]) == CONFIG_KEYS
        assert entry["failed_requests"] == 0 and not entry["error"]
        assert 0 <= entry["goodput_rps"] <= entry["throughput_rps"]
        assert entry["p50_ms"] <= entry["p99_ms"]
    assert {t["config"]["precision"] for t in trials} == {"int8", "fp32"}
    configs = [t["config"] for t in trials]
    assert document["search_best"] in trials and document["search_baseline"] == trials[0]
    # confirmed, not re-chosen: the search's pick, or the baseline where the pick lost when both were re-run
    assert document["best"]["config"] in (document["search_best"]["config"], document["baseline"]["config"])
    assert document["best"]["config"] in configs
    if document["best"]["config"] != document["search_best"]["config"]:
        assert document["best"] == document["baseline"]
    assert document["baseline"]["config"] == trials[0]["config"] == {**trials[0]["config"], "max_batch": 0}
    assert document["baseline"]["config"]["instances"] == 1
    assert document["gain"] == document["best"]["goodput_rps"] / document["baseline"]["goodput_rps"]
    assert document["slo_met"] == (document["best"]["p99_ms"] <= 200)
    assert document["baseline"]["config"]["precision"] == "fp32"
    assert document["winner_precision"] == document["best"]["config"]["precision"]
    assert document["settings"]["slo_p99_ms"] == 200 and document["settings"]["window_s"] > 0
    assert document["machine"]["logical_cores"] >= 1
    assert document["remeasured"]["throughput_rps"] > 0 and document["remeasured"]["throughput_ratio"] > 0

    best = document["best"]["config"]
    config = text_format.Parse((repo / "mlp" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.max_batch_size == best["max_batch"]
    assert config.instance_group[0].count == best["instances"]
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(config.instance_group[0].kind) == "KIND_CPU"
    if best["max_batch"]:
        assert list(config.dynamic_batching.preferred_batch_size) == best["preferred"]
        assert config.dynamic_batching.max_queue_delay_microseconds == best["max_queue_delay_us"]
    record = json.loads((repo / "mlp" / "1" / "deploy.json").read_text())
    assert record["precision"] == best["precision"]

    html = (out / "tune.html").read_text()
    assert html.count("<tr class=") == len(trials)
    assert "<svg" in html and html.count("<circle") == len(trials)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.serial  # tune's choices rest on measured latencies: run alone (make test)
def test_a_search_on_recorded_arrivals_replays_them_in_every_trial(
    tmp_path: Path, fp32_build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tune --trace`: each trial, the confirmation and the re-measure are open-loop replays of the trace."""
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "cache"))
    short_windows(monkeypatch, window_s=None)  # the trace's own 2 s window, each a whole pass of it
    trace = tmp_path / "arrivals.csv"  # 100/s with a 0.5 s burst of 300/s every 2 s: 150/s on average
    quiet, burst = np.arange(0.5, 2.0, 0.01), np.arange(0.0, 0.5, 1 / 300)
    trace.write_text("time\n" + "\n".join(f"{t:.6f}" for t in np.sort(np.concatenate([quiet, burst]))) + "\n")
    out, repo = tmp_path / "out", tmp_path / "repo"
    argv = ["tune", str(fp32_build), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "200"]
    argv += ["--quick", "--max-trials", "1", "--trace", str(trace), "--repo", str(repo), "--name", "mlp"]
    assert main([*argv, "--out", str(out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    settings = document["settings"]
    assert settings["load"] == "open" and settings["users"] is None and "lowest p99" in settings["ties"]
    assert settings["trace"]["requests_per_pass"] == len(quiet) + len(burst) and settings["max_in_flight"] == 512
    offered = settings["trace"]["mean_rate_rps"]
    assert offered == pytest.approx(150.0, rel=0.02)
    for entry in [*document["trials"], document["best"], document["baseline"]]:
        assert entry["failed_requests"] == 0 and not entry["error"]
        assert entry["send_lag_p99_ms"] is not None and entry["send_lag_p99_ms"] >= 0.0  # measured, per trial
        assert 0.8 * offered <= entry["throughput_rps"] <= 1.2 * offered, "an open loop serves what is offered"
    assert 0.8 * offered <= document["remeasured"]["throughput_rps"] <= 1.2 * offered
    assert "open-loop load" in document["remeasured"]["how"]
    replayed = LoadRun.load(next((out / "remeasure").glob("load-*.json"))).results[0]
    assert replayed.arrivals == "trace" and replayed.trace["file"] == str(trace) and replayed.max_in_flight == 512


@pytest.mark.e2e
@pytest.mark.slow  # not serial: a 1 µs SLO no machine meets, however busy
def test_an_slo_no_configuration_meets_deploys_nothing_and_fails(
    tmp_path: Path, fp32_build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A p99 SLO of 1 µs: every configuration misses it, so the user's repository is left as it was and tune exits 1
    with the best's p99 named; tune.json still holds every trial, with slo_met false and nothing deployed."""
    monkeypatch.setenv("QUANTSERVE_CACHE_DIR", str(tmp_path / "cache"))
    short_windows(monkeypatch)
    out, repo = tmp_path / "out", tmp_path / "repo"
    argv = ["tune", str(fp32_build), "--data", str(tmp_path / "load.npz"), "--slo-p99-ms", "0.001", "--quick"]
    argv += ["--max-trials", "1", "--users", "4", "--repo", str(repo), "--name", "mlp", "--out", str(out)]
    assert main(argv) == 1
    captured = capsys.readouterr()
    line = captured.err.strip().splitlines()[-1]
    assert line.startswith("quantserve: tune: no configuration can meet the 0.001 ms p99 SLO: its model computes ")
    # then ", while other processes took N% of the cores" where the machine was busy
    assert "(Triton's compute time per execution: trial 1, no batching x1" in line, line
    assert "(stopped after 1 trial(s)); kept: no batching x1, the lowest p99 measured (p99 " in line, line
    assert line.endswith("; nothing deployed (--allow-slo-miss deploys it)"), line
    assert "nothing deployed (the SLO was missed)" in captured.out and "stopping the search" in captured.err
    assert not (repo / "mlp").exists()
    document = json.loads((out / "tune.json").read_text())
    assert document["slo_met"] is False and document["deployed"] == {} and document["remeasured"] == {}
    # the baseline alone: out of reach once the only build was measured, not after every trial and a confirmation
    assert len(document["trials"]) == 1 and document["trials"][0]["requests"] > 0
    assert document["trials"][0]["fastest_ms"] > 0.002 and document["search"]["stopped"]
    assert document["trials"][0]["compute_ms"] > 0.002  # Triton's counters read in tune's windows (session 64)


@pytest.mark.e2e
@pytest.mark.slow  # not serial: a fault's naming and the restart; most of it waits out the hung requests' deadline
@pytest.mark.parametrize(
    ("fault", "cause"),
    # SIGTERM: it refuses its liveness check at once and exits 2 s later, once called "stopped answering" (session 40)
    [(signal.SIGKILL, "killed by SIGKILL"), (signal.SIGSTOP, "stopped answering"), (signal.SIGTERM, "exited with")],
    ids=["SIGKILL", "SIGSTOP", "SIGTERM"],
)
def test_a_server_killed_or_hung_in_a_trial_is_restarted_and_the_trial_measured_again(
    tmp_path: Path, fp32_build: Path, fault: signal.Signals, cause: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server dies (or stops answering) during a trial: it is started again and the trial measured again (a
    death from outside is not the configuration's, session 31), the restart said; the next one is measured."""
    from quantserve.cli import tune_server

    short_windows(monkeypatch, window_s=3.0)  # the fault comes 2 s in: inside the first window
    monkeypatch.setattr(tune_server, "LIVENESS_TIMEOUT_S", 2.0)  # a stopped server answers no sooner at 10 s
    settings = settings_for(tmp_path, {"": fp32_build}, quick=True, users=4)
    config = settings.baseline()
    with TrialServer(settings, tmp_path / "out") as bench:
        first_pid = bench.server.pid
        assert first_pid is not None
        timer = threading.Timer(2.0, os.kill, (first_pid, fault))
        timer.start()
        try:
            retried = bench.run(config)
        finally:
            timer.join()
            with contextlib.suppress(ProcessLookupError):
                os.kill(first_pid, signal.SIGCONT)
        print(f"\n{fault.name} during a trial: {retried.server_restarts}")
        assert len(retried.server_restarts) == 1 and retried.server_restarts[0].startswith(f"tritonserver {cause}")
        assert not retried.error and retried.requests > 0 and retried.goodput_rps > 0
        assert bench.server.pid != first_pid and _gone(first_pid)
        after = bench.run(config)
        assert not after.error and after.requests > 0 and after.failed_requests == 0, after


def _gone(pid: int) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True
